"""testssl.sh (Debian's package) from the outside against every public TLS endpoint of each session
testbed: 443 on each api host and at the load balancer, 465 and, by STARTTLS, 587 and 25 on each mail host.
No finding of severity MEDIUM or higher that the deployment controls.

One testssl run per endpoint, all of a testbed's at once. The ACME test server's root is handed to
testssl (`--add-ca`), so the chain is judged like a Let's Encrypt one in production; the few findings
the deployment cannot change, and testssl's warnings about itself, are listed below with the reason
for each.
"""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from postyard.testbed import internet

SEVERE = ("MEDIUM", "HIGH", "CRITICAL")
SEVERITIES = ("OK", "INFO", "LOW", "MEDIUM", "HIGH", "CRITICAL", "WARN")

# Findings of MEDIUM or higher the deployment cannot control: {testssl id: (ports it may appear on, why)}.
NOT_THE_DEPLOYMENTS: dict[str, tuple[tuple[int, ...], str]] = {
    # pebble, the testbed's ACME server, makes five-year certificates with neither a CRL distribution
    # point nor an OCSP URI; Let's Encrypt's last 90 days and carry a CRL distribution point.
    "cert_validityPeriod": ((443, 465, 587, 25), "the testbed's ACME server (pebble) issues five-year certificates"),
    "cert_revocation": ((443, 465, 587, 25), "the testbed's ACME server (pebble) names no CRL or OCSP responder"),
    # granian (rustls) has no setting for a server cipher order. Every suite it offers is ECDHE with
    # AEAD (tests/infra/test_api.py), so whichever the client prefers is a strong one.
    "cipher_order": ((443,), "granian cannot set a server cipher order; it offers ECDHE+AEAD suites only"),
}

# Warnings about testssl itself, not about the server.
SCANNER_WARNINGS: dict[str, str] = {
    "engine_problem": "the scanning machine's OpenSSL has no GOST engine",
    # testssl 3.0.8's resumption probe through OpenSSL 3 fails against these servers now and then.
    "sessionresumption_ticket": "testssl's ticket resumption probe",
    "sessionresumption_ID": "testssl's session ID resumption probe",
}


@dataclass(frozen=True)
class Endpoint:
    host: str
    address: str
    port: int
    starttls: bool

    @property
    def label(self) -> str:
        return f"{self.host}:{self.port}"


def endpoints(bed) -> list[Endpoint]:
    found = []
    for record in bed.platform_hosts:
        if "api" in record.groups:
            found.append(Endpoint(record.fqdn, record.public_address, 443, False))
        if "mail" in record.groups:
            found += [Endpoint(record.fqdn, record.public_address, 465, False),
                      Endpoint(record.fqdn, record.public_address, 587, True),
                      Endpoint(record.fqdn, record.public_address, 25, True)]
    if bed.api_name and bed.load_balancer:
        # through the load balancer to an api host's proxy, where TLS ends
        found.append(Endpoint(bed.api_name, bed.load_balancer.public_address, 443, False))
    return found


# testssl's default run without client simulation (-c), which only reports (as INFO) which suite each
# of some forty browsers would get, and takes two thirds of the time.
CHECKS = ("--protocols", "--std", "--fs", "--server-preference", "--server-defaults", "--headers", "--vulnerable")


def scan_argv(endpoint: Endpoint, report: Path, ca_file: Path) -> list[str]:
    return [
        "testssl", "--quiet", "--color", "0", "--warnings", "off", "--nodns", "none", *CHECKS,
        "--connect-timeout", "10", "--openssl-timeout", "10",
        "--ip", endpoint.address, "--add-ca", str(ca_file), "--jsonfile", str(report),
        *(["--starttls", "smtp"] if endpoint.starttls else []),
        f"{endpoint.host}:{endpoint.port}",
    ]


@pytest.fixture(scope="module")
def reports(each_testbed, tmp_path_factory) -> dict[str, list[dict[str, Any]]]:
    """{endpoint label: testssl's findings}, every endpoint of the testbed scanned at once."""
    directory = tmp_path_factory.mktemp("testssl")
    ca_file = directory / "pebble-root.pem"
    ca_file.write_text(internet.acme_root_pem(each_testbed))
    runs = {}
    for endpoint in endpoints(each_testbed):
        report = directory / f"{endpoint.host}-{endpoint.port}.json"
        argv = ["ip", "netns", "exec", each_testbed.outside_netns, *scan_argv(endpoint, report, ca_file)]
        log = (directory / f"{endpoint.host}-{endpoint.port}.log").open("w")
        runs[endpoint.label] = (subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT), report, log)
    found = {}
    for label, (process, report, log) in runs.items():
        process.wait(timeout=900)
        log.close()
        assert report.exists(), f"testssl wrote no report for {label}: {Path(log.name).read_text()[-2000:]}"
        found[label] = json.loads(report.read_text())
    for label, findings in found.items():
        counts = Counter(f["severity"] for f in findings)
        print(f"testssl {label}: " + ", ".join(f"{s} {counts[s]}" for s in SEVERITIES if counts[s]))
    return found


def test_testssl_scanned_every_endpoint_completely(each_testbed, reports):
    for endpoint in endpoints(each_testbed):
        findings = {f["id"]: f for f in reports[endpoint.label]}
        problems = [f for f in findings.values() if f["id"] == "scanProblem"
                    or f["severity"] == "WARN" and f["id"] not in SCANNER_WARNINGS]
        assert not problems, (endpoint.label, problems)
        assert findings["TLS1_2"]["finding"] == "offered", (endpoint.label, findings["TLS1_2"])
        assert findings["cert_chain_of_trust"]["severity"] == "OK", (endpoint.label, findings["cert_chain_of_trust"])


def out_of_the_deployments_hands(finding: dict[str, Any]) -> bool:
    ports, _ = NOT_THE_DEPLOYMENTS.get(finding["id"], ((), ""))
    return int(finding["port"]) in ports


def test_testssl_finds_nothing_of_medium_or_higher_that_the_deployment_controls(each_testbed, reports):
    severe = {label: [f"{f['id']} ({f['severity']}): {f['finding']}" for f in findings
                      if f["severity"] in SEVERE and not out_of_the_deployments_hands(f)]
              for label, findings in reports.items()}
    assert not any(severe.values()), {label: items for label, items in severe.items() if items}
