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

import pytest
import resend

from postyard.appliance_client import ApiAccess, name_resolver
from postyard.deployer import REPO
from postyard.testbed.state import TestbedState
from tests.testbed.mail_support import MailTestbed

__all__ = ["Appliance", "open_appliance", "outside_webhook_receiver", "verified_domain"]


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
