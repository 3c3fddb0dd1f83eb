"""The deployed API as a customer reaches it with the `resend` SDK: the testbed's host names resolved to
their addresses, the ACME test CA trusted, and a team with an API key and an SMTP login."""

from __future__ import annotations

import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import resend

from app.mailhost.postfix_maps import BOUNCE_TRANSPORT, RECEIVE_TRANSPORT_NEXTHOP
from postyard.appliance_client import ApiAccess, name_resolver
from postyard.deployer import REPO
from postyard.probe import Vantage
from postyard.testbed.state import TestbedState
from tests.testbed.mail_support import MailTestbed

__all__ = ["Appliance", "open_appliance", "outside_webhook_receiver", "receive_on", "send_from_internet",
           "verified_domain"]


@dataclass(frozen=True)
class Appliance:
    """A team's view of one deployed testbed's API."""

    mail: MailTestbed
    access: ApiAccess
    ca_bundle: Path
    smtp_login: tuple[str, str]

    @property
    def url(self) -> str:
        return self.access.url

    @property
    def api_key(self) -> str:
        return self.access.key


def open_appliance(bed: TestbedState, ca_dir: Path, patch: pytest.MonkeyPatch) -> Appliance:
    """Resolve the testbed's names, trust pebble's root, create a team (an API key and an SMTP credential)
    and point `resend` at the API."""
    mail_bed = MailTestbed(bed)
    patch.setattr(socket, "getaddrinfo", name_resolver(mail_bed.host_names()))
    team, access = mail_bed.open_team(f"e2e-{uuid.uuid4().hex[:6]}", smtp_credential=True)
    assert team.smtp_login is not None
    root = ca_dir / "pebble-root.pem"
    root.write_text(access.root_pem)
    patch.setenv("REQUESTS_CA_BUNDLE", str(root))
    resend.api_url, resend.api_key = access.url, access.key
    return Appliance(mail_bed, access, root, team.smtp_login)


def verified_domain(opened: Appliance) -> str:
    """A new domain created through the API, its records published, verified, its key on the mail host.

    The key sync has it there within seconds; a real customer's DNS takes longer."""
    return opened.mail.verified_domain(opened.access, prefix="e", key_timeout=10)


@contextmanager
def outside_webhook_receiver(bed: TestbedState, directory: Path, port: int) -> Iterator[Path]:
    """A webhook endpoint on the outside host's address and `port`, keeping each delivery as a JSON line in the
    file it yields, until the block ends."""
    path = directory / "deliveries.jsonl"
    path.touch()
    receiver = subprocess.Popen(
        ["ip", "netns", "exec", bed.outside_netns, sys.executable, "-m", "tests.testbed.webhook_receiver",
         bed.outside_address, str(port), str(path)], cwd=REPO)
    try:
        yield path
    finally:
        receiver.terminate()
        receiver.wait(10)


def receive_on(opened: Appliance, domain: str) -> None:
    """Turn receiving on for one of the team's verified domains, publish its MX as the API lists it, verify it,
    and wait until the mail host's Postfix routes the name to the receive pipe."""
    with opened.access.client() as client:
        found = next(d for d in client.get("/domains?limit=100").raise_for_status().json()["data"]
                     if d["name"] == domain)
        client.patch(f"/domains/{found['id']}", json={"capabilities": {"receiving": "enabled"}}).raise_for_status()
        records = client.get(f"/domains/{found['id']}").raise_for_status().json()["records"]
    opened.mail.publish([r for r in records if r["record"] == "Receiving"])
    with opened.access.client() as client:  # port 25 takes the domain's mail once its MX is found to point here
        verified = client.post(f"/domains/{found['id']}/verify").raise_for_status().json()
    assert {r["status"] for r in verified["records"] if r["record"] == "Receiving"} == {"verified"}, verified
    opened.mail.wait_for_map_entry(BOUNCE_TRANSPORT, domain, lambda found: found == RECEIVE_TRANSPORT_NEXTHOP)


def send_from_internet(opened: Appliance, mail_from: str, rcpt_to: str, message: bytes) -> dict[str, Any]:
    """One SMTP session from the remote MX's host to the mail host's port 25 with STARTTLS, as another MTA delivers
    there: every reply."""
    internet_host = opened.mail.internet
    assert internet_host is not None
    return Vantage(internet_host.netns).smtp(host=opened.mail.mail.public_address, port=25, tls="starttls",
                                             mail_from=mail_from, rcpt_to=rcpt_to, message=message.decode())
