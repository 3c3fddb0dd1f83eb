"""SMTP submission on a benchmark's testbed: the team's login, a twin of 587 that skips the SMTP intake,
the per-login limit raised, and bench/submission_client.py run on the mail host."""

from __future__ import annotations

import json
import shlex
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from app.host_layout import POLICY_SERVICE, POSTFIX_MAPS_DIR
from app.mailhost.postfix_maps import SENDER_LOGINS
from bench import dkim as mail_bench
from postyard.appliance_client import ApiAccess, TestbedAppliance

__all__ = ["DIRECT", "SUBMISSION", "Login", "Submitted", "raised_limit_and_direct_twin", "smtp_login", "submit"]

SUBMISSION = "127.0.0.1:587"
# Added by the bench: 587's options without the intake, signed as the internal listener signs, so
# Postfix queues the mail itself and relays it to the sink.
DIRECT = "127.0.0.1:10587"
# What the twin takes from the internal listener rather than from 587: the milters, and the cleanup
# service that drops the submitting client's Received line.
SIGNING_OPTIONS = ("smtpd_milters", "cleanup_service_name")
CLIENT = Path(__file__).with_name("submission_client.py")
CLIENT_ON_HOST = "/tmp/bench-submission-client.py"
HOST_PYTHON = "/opt/postyard/venv/bin/python"  # the app's virtualenv: aiosmtplib (roles/app_runtime.py)
LIMIT_DROP_IN = f"/run/systemd/system/{POLICY_SERVICE}.service.d/bench.conf"
RAISED_LIMIT = 100_000_000  # messages per minute and login: never reached
LOGIN_TIMEOUT = 30


@dataclass(frozen=True)
class Login:
    username: str
    password: str


@dataclass(frozen=True)
class Submitted:
    started: float  # when the client's first session started, seconds since the epoch
    seconds: float  # until the last message was answered
    client_cpu: float  # CPU seconds of the client (on the mail host, outside the appliance's units)


def smtp_login(api: ApiAccess, appliance: TestbedAppliance, domain: str) -> Login:
    """A new SMTP login of the team, once Postfix's sender login map lets it send as `domain`."""
    with api.client() as client:
        created = client.post("/smtp-credentials", json={"name": "bench"}).raise_for_status().json()
    login = Login(created["username"], created["password"])
    lookup = f"postmap -q @{domain} cdb:{POSTFIX_MAPS_DIR}/{SENDER_LOGINS} || true"
    deadline = time.monotonic() + LOGIN_TIMEOUT
    while login.username not in mail_bench.on_mail(appliance, lookup).strip().split(","):
        if time.monotonic() > deadline:
            raise RuntimeError(f"the login for {domain} did not reach Postfix's map within {LOGIN_TIMEOUT} s")
        time.sleep(0.5)
    return login


def _copy_options(source: str, names: str) -> str:
    """Shell lines setting `source`'s master.cf options, those that `names` (grep -E) matches, on DIRECT."""
    return (f"postconf -P | grep -E '^{source}/inet/({names}) ' "
            f"| sed -e 's#^{source}/inet/##' -e 's# = \\?#=#' | while IFS= read -r setting; do\n"
            f"  postconf -P \"{DIRECT}/inet/$setting\"\ndone\n")


@contextmanager
def raised_limit_and_direct_twin(appliance: TestbedAppliance) -> Iterator[None]:
    """Inside the block, the per-login limit never refuses and DIRECT listens; after it, the host is as deployed."""
    mail_bench.on_mail(appliance, f"""
mkdir -p {Path(LIMIT_DROP_IN).parent}
printf '[Service]\\nEnvironment=POSTYARD_SUBMISSION_MESSAGES_PER_MINUTE={RAISED_LIMIT}\\n' > {LIMIT_DROP_IN}
systemctl daemon-reload
systemctl restart {POLICY_SERVICE}
postconf -M '{DIRECT}/inet={DIRECT} inet n - n - - smtpd'
{_copy_options("submission", "[a-z_]+")}
postconf -PX '{DIRECT}/inet/smtpd_proxy_filter' '{DIRECT}/inet/smtpd_proxy_options'
{_copy_options(mail_bench.SIGNING, "|".join(SIGNING_OPTIONS))}
postconf -P '{DIRECT}/inet/syslog_name=postfix/bench-submission'
postfix check
postfix reload >/dev/null 2>&1
""")
    try:
        yield
    finally:
        mail_bench.on_mail(appliance, f"""
rm -f {LIMIT_DROP_IN}
rmdir --ignore-fail-on-non-empty {Path(LIMIT_DROP_IN).parent}
systemctl daemon-reload
systemctl restart {POLICY_SERVICE}
postconf -MX '{DIRECT}/inet'
postfix reload >/dev/null 2>&1
""")


def submit(appliance: TestbedAppliance, login: Login, target: str, sender: str, recipient: str, messages: int,
           sessions: int) -> Submitted:
    """The client on the mail host: `messages` copies of the bench's message into `target` (host:port)."""
    mail_bench.upload(appliance, CLIENT_ON_HOST, CLIENT.read_text())
    host, port = target.rsplit(":", 1)
    arguments = shlex.join([host, port, sender, recipient, mail_bench.MESSAGE_FILE, str(messages), str(sessions)])
    output = mail_bench.on_mail(
        appliance,
        f"BENCH_SMTP_USERNAME={shlex.quote(login.username)} BENCH_SMTP_PASSWORD={shlex.quote(login.password)} "
        f"{HOST_PYTHON} {CLIENT_ON_HOST} {arguments}\n",
        timeout=mail_bench.QUEUE_TIMEOUT + 120)
    figures = json.loads(output)
    return Submitted(figures["started"], figures["seconds"], figures["cpu"])
