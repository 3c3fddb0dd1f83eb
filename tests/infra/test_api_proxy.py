"""The load-balanced API on its hosts: the balancer passes TCP on with the PROXY protocol to each api host's
proxy and decrypts nothing; each proxy runs as a user of its own, listens on the private address alone, holds
certbot's certificate readable by that user alone, and Debian's own HAProxy unit stays off where nothing needs it."""

from __future__ import annotations

from app.host_layout import API_PROXY_HEALTH_PORT, API_PROXY_PORT, API_PROXY_SERVICE
from roles.api_proxy import PEM_PATH, PROXY_USER
from roles.load_balancer import CONFIG as BALANCER_CONFIG
from roles.tls import FULLCHAIN_PATH


def test_the_balancer_sends_every_api_host_the_proxy_protocol_and_decrypts_nothing(balancer, all_hosts,
                                                                                     balancer_host):
    assert balancer.service("haproxy").is_running and balancer.service("haproxy").is_enabled
    config = balancer.file(BALANCER_CONFIG).content_string
    api_hosts = [h for h in all_hosts if "api" in h.groups and h.environment == balancer_host.environment]
    assert api_hosts
    for api_host in api_hosts:
        assert f"{api_host.private_address}:{API_PROXY_PORT}" in config
    assert "send-proxy-v2" in config and " crt " not in config
    assert balancer.run(f"haproxy -c -q -f {BALANCER_CONFIG}").rc == 0


def test_the_proxy_runs_as_its_own_user_on_the_private_address_alone(proxy, proxy_host):
    unit = proxy.service(API_PROXY_SERVICE)
    assert unit.is_running and unit.is_enabled
    assert proxy.run(f"systemctl show -P User {API_PROXY_SERVICE}").stdout.strip() == PROXY_USER
    for port in (API_PROXY_PORT, API_PROXY_HEALTH_PORT):
        listening = proxy.run(f"ss -Htln 'sport = :{port}'").stdout.split("\n")
        assert {line.split()[3] for line in listening if line.strip()} == {f"{proxy_host.private_address}:{port}"}


def test_the_proxy_presents_certbots_certificate_readable_by_its_user_alone(proxy):
    pem = proxy.file(PEM_PATH)
    assert pem.exists and pem.user == PROXY_USER and pem.mode == 0o600
    presented = proxy.run(f"openssl x509 -noout -fingerprint -sha256 -in {PEM_PATH}").stdout
    issued = proxy.run(f"openssl x509 -noout -fingerprint -sha256 -in {FULLCHAIN_PATH}").stdout
    assert presented and presented == issued, "the proxy holds another certificate than certbot's"
    assert proxy.run(f"openssl pkey -in {PEM_PATH} -noout").rc == 0


def test_debians_haproxy_unit_is_off_where_no_database_router_needs_it(proxy, proxy_host):
    if "postgresql_router" in proxy_host.roles:
        assert proxy.service("haproxy").is_running
    else:
        assert not proxy.service("haproxy").is_running and not proxy.service("haproxy").is_enabled
