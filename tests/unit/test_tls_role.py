"""The TLS role's decisions: what certbot is asked for, which services reload, which settings are refused."""

from __future__ import annotations

import shlex

import pytest
from pyinfra.api.exceptions import DeployError

from app.host_layout import ACME_STANDALONE_PORT, API_PROXY_SERVICE, API_SERVICE
from postyard.testbed import inventory as testbed_inventory
from roles import tls

PEBBLE = "https://acme.test:14000/dir"


def test_mail_hosts_reload_postfix_and_dovecot():
    assert tls.reloaded_units(["mail"]) == ("postfix.service", "dovecot.service")


def test_api_hosts_reload_the_api():
    assert tls.reloaded_units(["api"]) == (f"{API_SERVICE}.service", f"{API_PROXY_SERVICE}.service")


def test_a_host_in_both_groups_reloads_all_three_once_and_others_none():
    assert tls.reloaded_units(["api", "db", "mail", "cache"]) == (
        "postfix.service", "dovecot.service", f"{API_SERVICE}.service", f"{API_PROXY_SERVICE}.service",
    )
    assert tls.reloaded_units(["db", "cache"]) == ()


def test_certbot_asks_for_one_named_certificate_by_standalone_http01():
    names = ["mail.example.com", "smtp.example.com"]
    argv = shlex.split(tls.certbot_command(PEBBLE, names, "ops@example.com"))
    assert argv[:2] == ["certbot", "certonly"]
    assert {"--non-interactive", "--agree-tos", "--standalone", "--no-eff-email"} <= set(argv)
    pairs = set(zip(argv, argv[1:], strict=False))
    assert {("--server", PEBBLE), ("--cert-name", "postyard"), ("--preferred-challenges", "http-01"),
            ("--http-01-port", "80"), ("--email", "ops@example.com"), ("--deploy-hook", tls.HOOK_PATH),
            ("--key-type", "ecdsa"), ("--elliptic-curve", "secp256r1")} <= pairs
    assert [b for a, b in zip(argv, argv[1:], strict=False) if a == "--domain"] == names


def test_certbot_registers_without_email_only_when_none_is_given():
    argv = shlex.split(tls.certbot_command(PEBBLE, ["node1.postyard.test"], None))
    assert "--register-unsafely-without-email" in argv and "--email" not in argv


def test_certificate_paths_are_certbots_live_ones():
    assert tls.FULLCHAIN_PATH == "/etc/letsencrypt/live/postyard/fullchain.pem"
    assert tls.PRIVKEY_PATH == "/etc/letsencrypt/live/postyard/privkey.pem"


LETS_ENCRYPT_STAGING = "https://acme-staging-v02.api.letsencrypt.org/directory"


@pytest.mark.parametrize("directory", [tls.LETS_ENCRYPT, LETS_ENCRYPT_STAGING])
def test_lets_encrypt_without_an_email_is_refused(directory):
    with pytest.raises(DeployError, match="acme_email"):
        tls.check_settings(directory, None, http01=True)


def test_other_directories_need_no_email():
    tls.check_settings(PEBBLE, None, http01=True)
    tls.check_settings(tls.LETS_ENCRYPT, "ops@example.com", http01=True)


def test_http01_without_port_80_is_refused():
    with pytest.raises(DeployError, match="acme_http01"):
        tls.check_settings(PEBBLE, None, http01=False)


def test_names_default_to_the_host_name():
    assert tls.tls_names({**tls.DEFAULTS, "hostname": "mail.example.com"}, "inventory-name") == ["mail.example.com"]
    assert tls.tls_names({**tls.DEFAULTS, "hostname": None}, "inventory-name") == ["inventory-name"]
    named = {**tls.DEFAULTS, "tls_names": ["a.example.com", "b.example.com"], "hostname": "x"}
    assert tls.tls_names(named, "inventory-name") == ["a.example.com", "b.example.com"]


def test_another_role_reads_the_names_without_this_roles_defaults():
    assert tls.tls_names({"hostname": "api2.example.com"}, "api2") == ["api2.example.com"]
    assert tls.tls_names({}, "api2") == ["api2"]


def test_request_record_changes_with_names_and_directory():
    record = tls.request_record(PEBBLE, ["a.example.com"])
    assert record != tls.request_record(tls.LETS_ENCRYPT, ["a.example.com"])
    assert record != tls.request_record(PEBBLE, ["a.example.com", "b.example.com"])
    assert record == tls.request_record(PEBBLE, ["a.example.com"], 80)
    assert record != tls.request_record(PEBBLE, ["a.example.com"], ACME_STANDALONE_PORT)


def test_behind_a_load_balancer_certbot_listens_where_the_proxy_relays():
    assert tls.http01_port(("tls", "api")) == 80
    assert tls.http01_port(("api_proxy", "tls", "api")) == ACME_STANDALONE_PORT
    assert f"--http-01-port {ACME_STANDALONE_PORT}" in tls.certbot_command(PEBBLE, ["a"], None, ACME_STANDALONE_PORT)


def test_testbed_hosts_are_known_by_their_environment():
    assert testbed_inventory.testbed_name("testbed-tls1") == "tls1"
    assert testbed_inventory.testbed_name("production") is None
    assert testbed_inventory.testbed_name(None) is None
