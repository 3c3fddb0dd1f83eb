"""Senders and messages on a deployed testbed's mail tier, for the mail tests."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any

from app.host_layout import POSTFIX_MAPS_DIR
from app.mailhost.postfix_maps import SENDER_LOGINS
from postyard.appliance_client import TestbedAppliance
from postyard.deployer import REPO
from postyard.testbed import internet

__all__ = ["ROUTES_WITHIN", "Sender", "MailTestbed", "make_message"]

# From a domain's verification until Postfix's sender-login map on the mail host names its login.
ROUTES_WITHIN = 10.0


@dataclass(frozen=True)
class Sender:
    domain: str
    username: str
    password: str
    records: list[dict[str, Any]]
    api_key: str = ""  # the team's first API key (new_sender's teams have one)


class MailTestbed(TestbedAppliance):
    """One deployed testbed seen from its mail host: make senders, send, read what arrived."""

    def _db_url(self, role: str) -> str:
        # The app's database roles answer from api hosts (and the db host's own loopback).
        address = "127.0.0.1" if self.api is self.db else self.db.private_address
        return f"postgresql+asyncpg://{role}:{self.store.get(f'postgresql-{role}')}@{address}:5432/postyard?ssl=verify-full"

    def _run_as_app(self, argv: list[str]) -> str:
        env = {
            **os.environ,
            "PGSSLROOTCERT": str(self.store.path("internal-ca.crt")),
            "POSTYARD_DATABASE_URL": self._db_url("postyard_app"),
            "POSTYARD_DATA_KEYS": self.store.get("app-data-keys"),
            "POSTYARD_REDIS_URL": "redis://127.0.0.1:1/0",  # none: the app falls back to in-process limits
            "POSTYARD_DNS_NAMESERVER": self.dns,
            "POSTYARD_MAIL_HOSTNAME": self.mail.fqdn,
            # as the deploy writes it: the records then name every mail host, as the deployed API's do
            "POSTYARD_MAIL_HOSTNAMES": ",".join(sorted(h.fqdn for h in self.hosts_in("mail"))),
            "POSTYARD_LOG_LEVEL": "WARNING",
            "TESTBED_TSIG": internet.tsig_secret(self.store),
        }
        result = subprocess.run(["ip", "netns", "exec", self.api.netns, sys.executable, *argv], cwd=REPO, env=env,
                                capture_output=True, text=True, timeout=120, check=False)
        if result.returncode != 0:
            raise RuntimeError(result.stderr[-3000:])
        return result.stdout

    def new_sender(self, algorithm: str = "rsa") -> Sender:
        domain = f"s{uuid.uuid4().hex[:10]}.test"
        made = json.loads(self._run_as_app(["-m", "tests.testbed.mail_sender", domain, algorithm]))
        assert made["status"] == "verified", made
        self.wait_for_sender_login(made["domain"], made["username"])
        return Sender(made["domain"], made["username"], made["password"], made["records"], made["api_key"])

    def wait_for_map_entry(self, name: str, key: str, holds: Callable[[str], bool]) -> float:
        """Seconds until the value of key in the Postfix map name (written by the mail-host sync) holds."""
        lookup = f"postmap -q {shlex.quote(key)} cdb:{POSTFIX_MAPS_DIR}/{name}; true"
        started = time.monotonic()
        while not holds(self.on_mail_host(lookup).strip()):
            assert time.monotonic() - started < ROUTES_WITHIN, f"{key} not in Postfix's {name} in {ROUTES_WITHIN} s"
            time.sleep(0.2)
        return time.monotonic() - started

    def wait_for_sender_login(self, domain: str, username: str) -> float:
        """Seconds until Postfix's sender-login map lets username send as domain."""
        return self.wait_for_map_entry(SENDER_LOGINS, f"@{domain}", lambda found: username in found.split(","))

    def submit(self, port: int, sender: Sender, message: EmailMessage, mail_from: str | None = None,
               rcpt_to: str | None = None) -> dict[str, Any]:
        return self.outside.smtp(
            host=self.mail.public_address, port=port, tls="implicit" if port == 465 else "starttls",
            auth=[sender.username, sender.password], mail_from=mail_from or message["From"].addresses[0].addr_spec,
            rcpt_to=rcpt_to or message["To"].addresses[0].addr_spec, message=message.as_string(),
        )


def make_message(domain: str, subject: str = "Hello") -> EmailMessage:
    message = EmailMessage()
    message["From"] = f"Sender <app@{domain}>"
    message["To"] = f"inbox@{internet.MX_DOMAIN}"
    message["Subject"] = subject
    message["Message-ID"] = make_msgid(domain=domain)
    message.set_content("A message from the mail tier tests.\n")
    return message
