"""The load-balanced API from the internet (the split testbed's outside namespace).

Clients reach the API's name at the load balancer (lb1, HAProxy standing in for Hetzner's) with a certificate
for that name. The balancer passes TCP on with the PROXY protocol to each api host's proxy, so the API sees
every client's own address: a key's IP allowlist admits the client and refuses the balancer, and a forged
X-Forwarded-For counts neither through the balancer nor straight at an api host. An api host whose API or proxy
stops is out within seconds, only the balancer reaches the proxies' ports, and each api host renews the
certificate for the API's name through the balancer.
"""

from __future__ import annotations

import ipaddress
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from app.host_layout import (
    API_PROXY_HEALTH_PATH,
    API_PROXY_HEALTH_PORT,
    API_PROXY_PORT,
    API_PROXY_SERVICE,
    API_READINESS_PATH,
    API_SERVICE,
)
from roles.support.inventory_secrets import INTERNAL_CA_PATH
from roles.tls import CERT_NAME, FULLCHAIN_PATH
from tests.testbed.appliance_support import Appliance, open_appliance
from tests.testbed.outside_http import OutsideHttp, fresh_sources

# Addresses of the outside namespace this module takes, clear of those the abuse suite takes.
FIRST_SOURCE_OFFSET = 40
FORGED_CLIENT = "203.0.113.77"
# Two failed health checks 2 s apart, and a check's own time: the failures clients may see after a host stops.
TAKEN_OUT_WITHIN = 8.0


@pytest.fixture(scope="module")
def bed(split_testbed):
    return split_testbed


@pytest.fixture(scope="module")
def opened(bed, tmp_path_factory, monkeypatch_module) -> Appliance:
    return open_appliance(bed, tmp_path_factory.mktemp("ca"), monkeypatch_module)


@pytest.fixture(scope="module")
def balanced_url(bed) -> str:
    assert bed.api_name and bed.load_balancer, "the split topology has a load balancer"
    return f"https://{bed.api_name}"


@pytest.fixture(scope="module")
def new_source(bed) -> Iterator[Callable[[], str]]:
    """A fresh address of the outside namespace for each call, removed after the module."""
    with fresh_sources(bed.outside_netns, str(ipaddress.ip_address(bed.outside_address) + FIRST_SOURCE_OFFSET)) as new:
        yield new


@pytest.fixture(scope="module")
def outside(bed, opened, new_source) -> Iterator[Callable[..., OutsideHttp]]:
    """HTTPS clients from the outside, each from an address of its own, to a URL (the balancer's by default);
    each request on a connection of its own, as a new client's would be."""
    clients: list[OutsideHttp] = []

    def make(url: str, key: str | None = None, source: str | None = None,
             headers: dict[str, str] | None = None) -> OutsideHttp:
        sent = {"Connection": "close", **(headers or {})}
        if key:
            sent["Authorization"] = f"Bearer {key}"
        clients.append(OutsideHttp(bed.outside_netns, url, opened.ca_bundle, source or new_source(), sent,
                                   workers=4))
        return clients[-1]

    yield make
    for client in clients:
        client.close()


def key_allowed_from(outside, balanced_url: str, opened: Appliance, *networks: str) -> str:
    """A new full-access key of the team, usable only from these networks."""
    owner = outside(balanced_url, opened.api_key)
    response = owner.post("/api-keys", json={"name": f"lb-{uuid.uuid4().hex[:6]}", "allowed_ips": list(networks)})
    assert response.status_code in (200, 201), response.text
    return response.json()["token"]


def on_host(bed, name: str, command: str) -> subprocess.CompletedProcess[str]:
    host = next(h for h in bed.platform_hosts if h.name == name)
    return subprocess.run(["ip", "netns", "exec", host.netns, "bash", "-c", command], capture_output=True,
                          text=True, timeout=30, check=False)


def ssh(bed, name: str, command: str) -> str:
    host = next(h for h in bed.platform_hosts if h.name == name)
    result = subprocess.run(["ssh", "-i", str(bed.ssh_key), "-o", f"UserKnownHostsFile={bed.known_hosts}",
                             "-o", "BatchMode=yes", f"root@{host.public_address}", command],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_the_api_name_answers_at_the_load_balancer_with_a_certificate_for_it(bed, opened, outside, balanced_url):
    client = outside(balanced_url)
    response = client.get(API_READINESS_PATH)  # the client checks the certificate against the name
    assert response.status_code == 200, response.text
    assert response.headers.get("strict-transport-security"), "HSTS comes from the API behind the balancer"


def test_the_api_sees_the_client_not_the_load_balancer(bed, opened, outside, balanced_url, new_source):
    client_address = new_source()
    mine = key_allowed_from(outside, balanced_url, opened, f"{client_address}/32")
    allowed = outside(balanced_url, mine, source=client_address).get("/domains")
    assert allowed.status_code == 200, allowed.text

    balancer = bed.load_balancer
    theirs = key_allowed_from(outside, balanced_url, opened, f"{balancer.public_address}/32",
                              f"{balancer.private_address}/32")
    refused = outside(balanced_url, theirs, source=client_address).get("/domains")
    assert refused.status_code == 403, refused.text
    assert "not allowed from this address" in refused.json()["message"]


@pytest.mark.parametrize("path", ["balancer", "api host"])
def test_a_forged_x_forwarded_for_counts_for_nothing(bed, opened, outside, balanced_url, path):
    api_host = next(h for h in bed.platform_hosts if "api" in h.groups)
    url = balanced_url if path == "balancer" else f"https://{api_host.fqdn}"
    key = key_allowed_from(outside, balanced_url, opened, f"{FORGED_CLIENT}/32")
    forged = {"X-Forwarded-For": FORGED_CLIENT, "Forwarded": f"for={FORGED_CLIENT}", "X-Real-IP": FORGED_CLIENT}
    response = outside(url, key, headers=forged).get("/domains")
    assert response.status_code == 403, response.text


@pytest.mark.parametrize("port", [API_PROXY_PORT, API_PROXY_HEALTH_PORT, 80])
def test_only_the_load_balancer_reaches_the_proxies_private_ports(bed, port):
    # On one bridge a connection is made in milliseconds or its packets are dropped: 2 s tells them apart.
    probes = [(source, api_host.name, f"timeout 2 bash -c 'exec 3<>/dev/tcp/{api_host.private_address}/{port}'")
              for api_host in bed.platform_hosts if "api" in api_host.groups
              for source in ("lb1", "mail1", "db1", "cache1")]
    with ThreadPoolExecutor(len(probes)) as pool:
        reached = list(pool.map(lambda probe: on_host(bed, probe[0], probe[2]).returncode == 0, probes))
    assert {(source, target): ok for (source, target, _), ok in zip(probes, reached, strict=True)} == {
        (source, target): source == "lb1" for source, target, _ in probes}


def test_an_api_host_whose_api_or_proxy_stops_is_taken_out_within_seconds(bed, opened, outside, balanced_url):
    """api1's API stops, then api2's proxy: clients keep asking on new connections, and only those in the
    balancer's first seconds (two failed checks, 2 s apart) fail; each host has been the only one answering."""
    client = outside(balanced_url)
    first, second = [h.name for h in bed.platform_hosts if "api" in h.groups]
    downtimes: dict[str, float] = {}
    for name, unit in ((first, API_SERVICE), (second, API_PROXY_SERVICE)):
        ssh(bed, name, f"systemctl stop {unit}")
        stopped, last_failure = time.monotonic(), None
        try:
            while time.monotonic() - stopped < 15:
                try:
                    ok = client.get(API_READINESS_PATH).status_code == 200
                except httpx.TransportError:
                    ok = False
                if not ok:
                    last_failure = time.monotonic() - stopped
        finally:
            ssh(bed, name, f"systemctl start {unit}")
        downtimes[f"{unit} on {name}"] = round(last_failure or 0.0, 1)
        wait_until_both_answer(bed)
    print(f"load balancer: clients saw failures for at most these seconds after each stop: {downtimes}")
    assert all(seconds <= TAKEN_OUT_WITHIN for seconds in downtimes.values()), downtimes


def wait_until_both_answer(bed, timeout: float = 60) -> None:
    """Until each api host's proxy says its API is alive, and the balancer has checked it twice since."""
    deadline = time.monotonic() + timeout
    api_hosts = [h for h in bed.platform_hosts if "api" in h.groups]
    while time.monotonic() < deadline:
        alive = [on_host(bed, "lb1", f"curl -fs -o /dev/null http://{h.private_address}:{API_PROXY_HEALTH_PORT}"
                                     f"{API_PROXY_HEALTH_PATH}").returncode == 0 for h in api_hosts]
        if all(alive):
            time.sleep(5)
            return
        time.sleep(1)
    raise AssertionError("an api host did not come back")


def served_serial(bed) -> str:
    """The serial of the certificate a client gets for the API's name at the load balancer."""
    fetch = (f"openssl s_client -connect {bed.load_balancer.public_address}:443 -servername {bed.api_name} "
             "</dev/null 2>/dev/null | openssl x509 -noout -serial")
    result = subprocess.run(["ip", "netns", "exec", bed.outside_netns, "bash", "-c", fetch], capture_output=True,
                            text=True, timeout=30, check=False)
    assert result.returncode == 0 and result.stdout.startswith("serial="), result.stderr
    return result.stdout.strip()


def test_each_api_host_renews_the_api_names_certificate_through_the_load_balancer(bed, opened):
    """ACME checks the API's name at the load balancer, which may pass the check to either api host: its proxy
    relays it to the one whose certbot asked. The renewed certificate is the one clients get afterwards."""
    api_hosts = [h.name for h in bed.platform_hosts if "api" in h.groups]
    serial = f"openssl x509 -noout -serial -in {FULLCHAIN_PATH}"
    before = {name: ssh(bed, name, serial).strip() for name in api_hosts}
    for name in api_hosts:
        ssh(bed, name, f"REQUESTS_CA_BUNDLE={INTERNAL_CA_PATH} certbot renew --force-renewal --cert-name {CERT_NAME} "
                       "--no-random-sleep-on-renew -q")
    after = {name: ssh(bed, name, serial).strip() for name in api_hosts}
    assert all(after[name] != before[name] for name in api_hosts), (before, after)
    seen = {served_serial(bed) for _ in range(6)}
    assert seen <= set(after.values()) and seen, (seen, after)
