"""The mail tier's policy on every mail host, read back and probed from outside with real clients.

sslyze scans each public mail port (25 and 587 with STARTTLS, 465 implicit): only TLS 1.2 and 1.3,
and for 1.2 only ECDHE key exchange with AEAD ciphers.
"""

from __future__ import annotations

import pytest

from app import tls_policy
from app.host_layout import DKIM_DIR, DKIM_SYNC_SERVICE
from postyard.probe import BELOW_TLS_1_2, Vantage, accepted_suites
from roles.mail_services import mail_units
from roles.opendkim import INSTANCES
from roles.postfix import POLICY_UNIT

SERVICES = ("postfix", "dovecot", DKIM_SYNC_SERVICE, "fail2ban", POLICY_UNIT, *(i.unit for i in INSTANCES),
            *(u.unit for u in mail_units()))


@pytest.fixture(scope="session")
def mail_outside(mail_host) -> Vantage:
    return Vantage(mail_host.outside_netns)


@pytest.fixture(scope="session")
def tls_scans(mail_host, mail_outside) -> dict[int, dict]:
    address = mail_host.address
    scans = {**mail_outside.tls_scan([f"{address}:25", f"{address}:587"], starttls=True),
             **mail_outside.tls_scan([f"{address}:465"], starttls=False)}
    return {int(target.rsplit(":", 1)[1]): result for target, result in scans.items()}


@pytest.mark.parametrize("service", SERVICES)
def test_mail_service_is_running_and_enabled(mail, service):
    unit = mail.service(service)
    assert unit.is_running and unit.is_enabled


def test_postfix_configuration_checks_clean(mail):
    check = mail.run("postfix check 2>&1; postconf -n 2>&1 >/dev/null")
    assert check.rc == 0 and check.stdout.strip() == "", check.stdout


def test_dkim_keys_are_readable_by_opendkim_only(mail):
    directory = mail.file(f"{DKIM_DIR}/current")
    assert directory.user == "opendkim" and directory.mode == 0o700
    for name in mail.run(f"ls {DKIM_DIR}/current").stdout.split():
        key = mail.file(f"{DKIM_DIR}/current/{name}")
        assert key.user == "opendkim" and key.mode == 0o600, name


@pytest.mark.parametrize("port", [25, 465, 587])
def test_no_protocol_below_tls_1_2_is_accepted_suites(tls_scans, port):
    scan = tls_scans[port]
    assert scan["scan_status"] == "COMPLETED", scan.get("connectivity_error_trace")
    for protocol in BELOW_TLS_1_2:
        assert accepted_suites(scan, protocol) == [], protocol


@pytest.mark.parametrize("port", [25, 465, 587])
def test_tls_1_2_offers_only_ecdhe_with_aead_and_tls_1_3_is_on(tls_scans, port):
    suites = accepted_suites(tls_scans[port], "tls_1_2_cipher_suites")
    print(f"port {port}: TLS 1.2 {suites}; TLS 1.3 {accepted_suites(tls_scans[port], 'tls_1_3_cipher_suites')}")
    assert suites
    for suite in suites:
        assert tls_policy.is_policy_tls12_suite(suite), suite
    assert accepted_suites(tls_scans[port], "tls_1_3_cipher_suites")


def test_587_offers_auth_only_after_starttls(mail_host, mail_outside):
    session = mail_outside.smtp(host=mail_host.address, port=587, tls="starttls")
    assert "starttls" in session["features"] and "auth" not in session["features"]
    assert "auth" in session["features_after_tls"]


def test_587_refuses_auth_before_starttls(mail_host, mail_outside):
    session = mail_outside.smtp(host=mail_host.address, port=587, auth=["someone", "something"])
    assert session["auth"][0] == 530


def test_465_speaks_tls_first_and_offers_auth(mail_host, mail_outside):
    session = mail_outside.smtp(host=mail_host.address, port=465, tls="implicit")
    assert session["tls_version"] in tls_policy.PROTOCOLS and "auth" in session["features"]


def test_465_refuses_tls_1_1(mail_host, mail_outside):
    session = mail_outside.smtp(host=mail_host.address, port=465, tls="implicit", max_tls="TLSv1_1")
    assert "connect_error" in session and "SSL" in session["connect_error"]


def test_25_offers_starttls_and_never_auth(mail_host, mail_outside):
    session = mail_outside.smtp(host=mail_host.address, port=25, tls="starttls")
    assert "starttls" in session["features"] and "auth" not in session["features"]
    assert "auth" not in session["features_after_tls"]


def test_25_is_not_an_open_relay(mail_host, mail_outside):
    session = mail_outside.smtp(host=mail_host.address, port=25, tls="starttls",
                                mail_from="someone@example.net", rcpt_to="someone-else@example.org")
    assert session["rcpt"][0] == 554 and session["rcpt"][1].startswith("5.7.1"), session
