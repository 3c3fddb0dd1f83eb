"""The deployed API as a customer reaches it: the testbed's host names resolved to their addresses, the
ACME test CA trusted, a team with an API key (the `resend` SDK set up with it), and a sending domain
whose records are published in the testbed's DNS and verified."""

from __future__ import annotations

import socket
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
import resend

from postyard.testbed import internet
from postyard.testbed.state import TestbedState
from tests.testbed.mail_sender import rdata
from tests.testbed.mail_support import MailTestbed

__all__ = ["Appliance", "open_appliance", "verified_domain"]


@dataclass(frozen=True)
class Appliance:
    """A team's view of one deployed testbed's API."""

    mail: MailTestbed
    url: str
    api_key: str
    ca_bundle: Path
    smtp_login: tuple[str, str]


def open_appliance(bed: TestbedState, ca_dir: Path, patch: pytest.MonkeyPatch) -> Appliance:
    """Resolve the testbed's names, trust pebble's root, create a team (an API key and an SMTP credential)
    and point `resend` at the API."""
    mail_bed = MailTestbed(bed)
    api = next(h for h in bed.platform_hosts if "api" in h.groups)
    # The API's certificate names the host; resolve the testbed's names to their addresses.
    names = {h.fqdn: h.public_address for h in bed.platform_hosts}
    real = socket.getaddrinfo
    patch.setattr(socket, "getaddrinfo", lambda host, *rest, **kw: real(names.get(host, host), *rest, **kw))
    root = ca_dir / "pebble-root.pem"
    root.write_text(internet.acme_root_pem(bed))
    patch.setenv("REQUESTS_CA_BUNDLE", str(root))
    created = mail_bed.on_mail_host(f"postyard-api create-team e2e-{uuid.uuid4().hex[:6]} --smtp-credential")
    printed = dict(line.split(": ", 1) for line in created.splitlines() if ": " in line)
    key, url = printed["api key (shown once)"], f"https://{api.fqdn}"
    resend.api_url, resend.api_key = url, key
    return Appliance(mail_bed, url, key, root, (printed["smtp username"], printed["smtp password (shown once)"]))


def verified_domain(mail_bed: MailTestbed) -> str:
    """A new domain created through the API, its records published, verified, its key on the mail host."""
    name = f"e{uuid.uuid4().hex[:10]}.test"
    created = resend.Domains.create({"name": name})
    for record in created["records"]:
        internet.update(mail_bed.dns, internet.tsig_secret(mail_bed.store), record["name"] + ".", record["type"],
                        [rdata(record)])
    resend.Domains.verify(created["id"])
    assert resend.Domains.get(created["id"])["status"] == "verified"
    # The key sync has the new key on the mail host within seconds; a real customer's DNS takes longer.
    deadline = time.monotonic() + 10
    while name not in mail_bed.on_mail_host("cat /var/lib/postyard/dkim/current/SigningTable*"):
        assert time.monotonic() < deadline, "the new domain's key did not reach the mail host within 10 s"
        time.sleep(0.5)
    return name
