"""The public certificate on each host with the tls role: issued by ACME, in place, renewable."""

from __future__ import annotations

import datetime
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.verification import PolicyBuilder, Store

from postyard.probe import Vantage
from postyard.testbed import internet
from postyard.testbed import inventory as testbed_inventory
from postyard.testbed import state as testbed_state
from roles.tls import CERT_NAME, FULLCHAIN_PATH, HOOK_PATH, PRIVKEY_PATH, RELOADED_UNITS, reloaded_units

RENEWAL_CONF = f"/etc/letsencrypt/renewal/{CERT_NAME}.conf"


@pytest.fixture(scope="session")
def chain(tls) -> list[x509.Certificate]:
    """The certificate, then its intermediates, as the services present them."""
    return x509.load_pem_x509_certificates(tls.file(FULLCHAIN_PATH).content)


def test_certificate_and_key_are_in_place(tls):
    for path in (FULLCHAIN_PATH, PRIVKEY_PATH):
        assert tls.file(path).exists, path


def test_certificate_names_are_the_hosts_public_names(chain, tls_host):
    names = chain[0].extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sorted(names.get_values_for_type(x509.DNSName)) == sorted(tls_host.tls_names)


def test_certificate_is_already_valid(chain):  # its days left: test_certificates.py
    assert chain[0].not_valid_before_utc <= datetime.datetime.now(datetime.UTC)


def test_certificate_key_is_ecdsa_p256(chain):
    key = chain[0].public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == "secp256r1"


def test_private_key_is_readable_by_root_only(tls):
    assert tls.check_output("stat -L -c '%%a %%U %%G' %s", PRIVKEY_PATH) == "600 root root"


def test_renewal_timer_is_enabled(tls):
    timer = tls.service("certbot.timer")
    assert timer.is_enabled
    assert timer.is_running


def test_renewal_uses_standalone_http01_and_the_deploy_hook(tls):
    conf = tls.file(RENEWAL_CONF)
    assert conf.contains("^authenticator = standalone$")
    assert conf.contains(f"^renew_hook = {HOOK_PATH}$")


def test_deploy_hook_reloads_exactly_the_services_using_the_certificate(tls, tls_host):
    hook = tls.file(HOOK_PATH)
    assert hook.mode == 0o755 and hook.user == "root"
    wanted = reloaded_units(tls_host.groups)
    assert wanted
    for unit in {u for units in RELOADED_UNITS.values() for u in units}:
        assert (unit in hook.content_string) == (unit in wanted), unit
    tls.run_expect([0], "sh -n %s", HOOK_PATH)


def test_port_80_is_reachable_from_outside_exactly_when_acme_http01_is_set(tls, tls_host):
    unit = "postyard-probe-http"
    tls.run_expect([0], "systemd-run --unit=%s --collect python3 -m http.server 80 --bind 0.0.0.0", unit)
    try:
        deadline = time.monotonic() + 15
        while not tls.socket("tcp://0.0.0.0:80").is_listening:
            assert time.monotonic() < deadline, "the probe listener did not start"
            time.sleep(0.3)
        state = Vantage(tls_host.outside_netns).scan_tcp(tls_host.address, [80])[80]
        assert state == ("open" if tls_host.flags["acme_http01"] else "filtered")
    finally:
        tls.run("systemctl stop %s", unit)


@pytest.fixture(scope="session")
def testbed(tls_host) -> testbed_state.TestbedState:
    name = testbed_inventory.testbed_name(tls_host.environment)
    if name is None:
        pytest.skip("not a testbed host: its certificate chains to Let's Encrypt, not to pebble")
    bed = testbed_state.load(name)
    assert bed is not None, f"testbed {name} is not up"
    return bed


def test_certificate_chains_to_the_testbeds_acme_root(chain, testbed, tls_host):
    root = x509.load_pem_x509_certificate(internet.acme_root_pem(testbed).encode())
    verifier = PolicyBuilder().store(Store([root])).build_server_verifier(x509.DNSName(tls_host.tls_names[0]))
    verifier.verify(chain[0], chain[1:])


def test_renewal_succeeds_in_certbots_service_environment(tls, testbed):
    conf = tls.file(RENEWAL_CONF)
    assert conf.contains(f"^server = {internet.ACME_DIRECTORY}$")
    environment = tls.check_output("systemctl show --property=Environment --value certbot.service")
    assert "REQUESTS_CA_BUNDLE=" in environment
    # --dry-run alone would go to Let's Encrypt's staging server instead of the saved one
    tls.run_expect(
        [0], f"env {environment} certbot renew --dry-run --cert-name {CERT_NAME} --no-random-sleep-on-renew "
        f"--server {internet.ACME_DIRECTORY}",
    )
