"""Probes from a vantage point: what a client elsewhere on the internet would see of a host."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from postyard.ssh import SshTarget, ssh_argv

__all__ = ["Vantage", "BELOW_TLS_1_2", "accepted_suites"]

# sslyze pins an older cryptography than the project, so it has a virtualenv of its own.
SSLYZE = Path(__file__).resolve().parents[1] / ".venv-sslyze" / "bin" / "sslyze"


@dataclass(frozen=True)
class Vantage:
    """Runs client tools here, or inside a network namespace (the testbed's outside point)."""

    netns: str | None = None

    def command(self, argv: list[str]) -> list[str]:
        return ["ip", "netns", "exec", self.netns, *argv] if self.netns else argv

    def run(self, argv: list[str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.command(argv), capture_output=True, text=True, timeout=timeout, check=False
        )

    def scan_tcp(self, address: str, ports: Iterable[int] | str) -> dict[int, str]:
        """{port: "open" | "closed" | "filtered"} for every port asked for."""
        return self.scan_hosts([address], ports)[address]

    def scan_hosts(self, addresses: list[str], ports: Iterable[int] | str) -> dict[str, dict[int, str]]:
        """One nmap run over several hosts: {address: {port: state}}."""
        spec = ports if isinstance(ports, str) else ",".join(str(p) for p in sorted(set(ports)))
        # A SYN scan (root only) sweeps all 65535 ports in seconds; a connect scan takes minutes. Most ports are
        # dropped, so each probe is sent twice: the rate, not the answers, sets the time. Over the testbed's bridges
        # (a namespace here) 20,000 a second finds what 5,000 does, in a quarter of the time; across the internet
        # a router on the way may drop probes sent that fast.
        scan_type = "-sS" if os.geteuid() == 0 else "-sT"
        rate = "20000" if self.netns else "5000"
        result = self.run(
            ["nmap", "-Pn", "-n", scan_type, "-T4", "--max-retries", "1", "--min-rate", rate,
             "-p", spec, "-oX", "-", *addresses],
            timeout=600,
        )
        if result.returncode != 0:
            raise RuntimeError(f"nmap failed: {result.stderr.strip()}")
        return parse_nmap_xml(result.stdout)

    def ssh_without_key(self, address: str, *options: str) -> subprocess.CompletedProcess[str]:
        """An SSH login attempt with no key and no prompts, plus extra client options."""
        argv = ssh_argv(SshTarget(address, address), "true", "StrictHostKeyChecking=no",
                        "UserKnownHostsFile=/dev/null", "PubkeyAuthentication=no", "ConnectTimeout=10", *options)
        return self.run(argv, timeout=30)

    def ssh_auth_methods(self, address: str) -> list[str]:
        """The authentication methods sshd offers to a client that has no key."""
        found = re.search(r"Permission denied \(([^)]*)\)", self.ssh_without_key(address).stderr)
        return found.group(1).split(",") if found else []

    def ssh_handshake(self, address: str, option: str) -> subprocess.CompletedProcess[str]:
        """Try an SSH handshake with one client option (e.g. Ciphers=aes128-cbc), no key."""
        return self.ssh_without_key(address, option)

    def tls_scan(self, targets: list[str], starttls: bool) -> dict[str, dict[str, Any]]:
        """{"address:port": sslyze's result} for the targets, from one sslyze run (STARTTLS: SMTP)."""
        if not SSLYZE.exists():
            raise RuntimeError("sslyze is missing: `make deps` installs it into .venv-sslyze")
        with tempfile.TemporaryDirectory() as directory:
            report = Path(directory) / "sslyze.json"
            argv = [str(SSLYZE), "--quiet", f"--json_out={report}", "--sslv2", "--sslv3", "--tlsv1", "--tlsv1_1",
                    "--tlsv1_2", "--tlsv1_3", *(["--starttls", "smtp"] if starttls else []), *targets]
            self.run(argv, timeout=300)
            results = json.loads(report.read_text())["server_scan_results"]
        return {f"{r['server_location']['hostname']}:{r['server_location']['port']}": r for r in results}

    def smtp(self, **spec: Any) -> dict[str, Any]:
        """One SMTP session from here (postyard/smtp_probe.py): every reply, as data."""
        result = self.run([sys.executable, "-m", "postyard.smtp_probe", json.dumps(spec)], timeout=90)
        if result.returncode != 0:
            raise RuntimeError(f"the SMTP probe failed: {result.stderr.strip()[-2000:]}")
        return json.loads(result.stdout)


# sslyze's result names for the protocols below TLS 1.2, which no endpoint may accept.
BELOW_TLS_1_2 = ("ssl_2_0_cipher_suites", "ssl_3_0_cipher_suites", "tls_1_0_cipher_suites", "tls_1_1_cipher_suites")


def accepted_suites(scan: dict[str, Any], protocol: str) -> list[str]:
    """The cipher suites an sslyze result says the server accepted for one protocol."""
    result = scan["scan_result"][protocol]["result"]
    return [suite["cipher_suite"]["name"] for suite in result["accepted_cipher_suites"]]


def parse_nmap_xml(document: str) -> dict[str, dict[int, str]]:
    """{address: {port: state}} from nmap's XML report."""
    report: dict[str, dict[int, str]] = {}
    for host in ElementTree.fromstring(document).iter("host"):
        address = host.find("address")
        if address is not None:
            report[address.attrib["addr"]] = _port_states(host)
    return report


def _port_states(host: ElementTree.Element) -> dict[int, str]:
    states: dict[int, str] = {}
    for port in host.iter("port"):
        state = port.find("state")
        states[int(port.attrib["portid"])] = state.attrib["state"] if state is not None else "unknown"
    # nmap folds uninteresting ports into <extraports>; expand them to the state it names
    for extra in host.iter("extraports"):
        for reasons in extra.iter("extrareasons"):
            for spec in reasons.attrib.get("ports", "").split(","):
                if not spec:
                    continue
                first, _, last = spec.partition("-")
                for number in range(int(first), int(last or first) + 1):
                    states.setdefault(number, extra.attrib["state"])
    return states
