"""The API on every api host, from outside: HTTPS with TLS 1.2 minimum and ECDHE+AEAD suites, HSTS;
and every Postyard unit on every host sandboxed to systemd-analyze's "OK" or better."""

from __future__ import annotations

import http.client
import re
import ssl
import time
import warnings
from dataclasses import dataclass

import pytest

from app import tls_policy
from app.host_layout import API_SERVICE
from postyard.probe import BELOW_TLS_1_2, Vantage, accepted_suites

GOOD_LEVELS = ("PERFECT", "SAFE", "OK")


@dataclass(frozen=True)
class Answer:
    status: int
    headers: http.client.HTTPMessage
    body: bytes


def https_get(address: str, name: str, path: str, maximum: ssl.TLSVersion | None = None) -> Answer:
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE  # the tls tests check the chain
    if maximum is not None:
        with warnings.catch_warnings():  # offering a deprecated protocol is the point of the test
            warnings.simplefilter("ignore", DeprecationWarning)
            context.minimum_version, context.maximum_version = ssl.TLSVersion.MINIMUM_SUPPORTED, maximum
        context.set_ciphers("ALL:@SECLEVEL=0")
    connection = http.client.HTTPSConnection(address, 443, timeout=15, context=context)
    try:
        connection.request("GET", path, headers={"Host": name})
        response = connection.getresponse()
        return Answer(response.status, response.headers, response.read())
    finally:
        connection.close()


def test_the_api_runs_and_is_enabled(api):
    unit = api.service(API_SERVICE)
    assert unit.is_running and unit.is_enabled


def test_the_api_answers_over_https_with_hsts(api_host):
    deadline = time.monotonic() + 30  # right after a deploy the API may still be starting
    while (response := https_get(api_host.address, api_host.fqdn, "/health")).status != 200:
        assert time.monotonic() < deadline, response.body
        time.sleep(1)
    assert re.match(r"max-age=\d{8,}", response.headers.get("Strict-Transport-Security", ""))
    assert response.headers.get("X-Content-Type-Options") == "nosniff"


def test_the_api_refuses_tls_1_1(api_host):
    with pytest.raises(ssl.SSLError):
        https_get(api_host.address, api_host.fqdn, "/health", maximum=ssl.TLSVersion.TLSv1_1)


def test_the_api_offers_only_tls_1_2_and_1_3_with_ecdhe_and_aead(api_host):
    scan = Vantage(api_host.outside_netns).tls_scan([f"{api_host.address}:443"], starttls=False)
    result = next(iter(scan.values()))
    assert result["scan_status"] == "COMPLETED"
    for protocol in BELOW_TLS_1_2:
        assert accepted_suites(result, protocol) == [], protocol
    suites = accepted_suites(result, "tls_1_2_cipher_suites")
    print(f"port 443: TLS 1.2 {suites}; TLS 1.3 {accepted_suites(result, 'tls_1_3_cipher_suites')}")
    assert suites and all(tls_policy.is_policy_tls12_suite(s) for s in suites)


def test_every_postyard_unit_is_sandboxed(host):
    units = host.run("systemctl list-unit-files --no-legend 'postyard-*.service' | awk '{print $1}'").stdout.split()
    for unit in units:
        verdict = host.run(f"systemd-analyze security {unit} | tail -1").stdout
        level = re.search(r"exposure level for \S+: ([\d.]+) (\w+)", verdict)
        assert level and level.group(2) in GOOD_LEVELS, f"{unit}: {verdict.strip()}"
