"""What an operator needs once the appliance is up: where the API is, what to trust, the first operator's
login, a first key, SMTP settings, and the DNS records to publish."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path

from postyard.appliance_client import create_team
from postyard.inventory_hosts import InfraHost
from postyard.ssh import SshError, ssh_run
from postyard.topology import LB_GROUP, SCHEMA_GROUP
from roles.tls import public_name

__all__ = ["FIRST_OPERATOR_STAMP", "FIRST_TEAM_STAMP", "access_summary", "operator_email"]

FIRST_TEAM_STAMP = "first-team-issued"
FIRST_OPERATOR_STAMP = "first-operator-issued"


def _first(hosts: list[InfraHost], group: str) -> InfraHost | None:
    return next((h for h in sorted(hosts, key=lambda h: h.name) if group in h.groups), None)


def api_name(api: InfraHost) -> str:
    """The name clients reach the API by (roles/tls.py)."""
    return public_name(api.tls_names, api.fqdn)


def _first_team(mail: InfraHost, project: str) -> list[str]:
    """A team with a full-access key and an SMTP credential, made once per inventory and shown once."""
    store = mail.secrets()
    if store.path(FIRST_TEAM_STAMP).exists():
        return ["first API key and SMTP credential: already shown when the appliance first came up",
                "    (make more with the API, or `postyard-api create-team NAME --smtp-credential` on a mail host)"]
    try:
        team = create_team(mail, project, smtp_credential=True)
    except SshError as error:
        return [f"first API key: not made ({error.stderr.strip()[-300:]})"]
    store.get(FIRST_TEAM_STAMP, lambda: "shown")
    return ["first team (shown once, keep it now):", *(f"    {line}" for line in team.printed.splitlines())]


def operator_email(api_fqdn: str, env: Mapping[str, str] = os.environ) -> str:
    """The first operator's address: POSTYARD_OPERATOR_EMAIL, else operator@ the API host's domain."""
    labels = api_fqdn.rstrip(".").split(".")
    return env.get("POSTYARD_OPERATOR_EMAIL") or f"operator@{'.'.join(labels[1:] if len(labels) > 2 else labels)}"


def _first_operator(api: InfraHost, schema: InfraHost) -> list[str]:
    """The instance's first operator, made once on the schema host (the one with the owner's credential; it
    keeps an existing operator and its password) and shown once."""
    store = api.secrets()
    if store.path(FIRST_OPERATOR_STAMP).exists():
        return ["first operator: already shown when the appliance first came up",
                "    (more with `python -m postyard admin create-operator EMAIL`; see docs/operators.md)"]
    try:
        printed = ssh_run(schema, ["postyard-api", "admin", "create-operator", "--first", operator_email(api.fqdn)],
                          timeout=120)
    except SshError as error:
        return [f"first operator: not made ({str(error)[-300:]})"]
    store.get(FIRST_OPERATOR_STAMP, lambda: "shown")
    return ["first operator (shown once, keep it now; sign in at the console or with POST /auth/login, "
            "see docs/operators.md):",
            *(f"    {line}" for line in printed.splitlines())]


def access_summary(hosts: list[InfraHost], project: str, trust: Path | None,
                   say: Callable[[str], None] = print) -> None:
    api, mail, schema = _first(hosts, "api"), _first(hosts, "mail"), _first(hosts, SCHEMA_GROUP)
    balancer = _first(hosts, LB_GROUP)
    if api is not None:
        say(f"API: https://{api_name(api)}  (RESEND_API_URL for Resend's SDKs; docs at /docs)")
        say(f"console: https://{api_name(api)}/console/  (sign in as the first operator, or as a team's member)")
        for line in _first_operator(api, schema or api):
            say(line)
    if trust is not None:
        say(f"trust: {trust}  (the ACME server's root; Let's Encrypt needs nothing extra)")
    if mail is None:
        return
    say(f"SMTP submission: {mail.fqdn} port 587 (STARTTLS) or 465 (TLS), AUTH PLAIN/LOGIN")
    for line in _first_team(mail, project):
        say(line)
    say("DNS records to publish:")
    for host in sorted(hosts, key=lambda h: h.name):
        say(f"    {host.fqdn}. A {host.address}")
    if api is not None and balancer is not None:
        say(f"    {api_name(api)}. A {balancer.address}  (the load balancer)")
    say(f"    PTR of {mail.address} -> {mail.fqdn}.  (set at the hosting provider)")
    say("    each sending domain: the records GET /domains/{id} lists (ownership, DKIM, the return path's MX and "
        "SPF, DMARC, MTA-STS, TLS-RPT; see docs/domains.md)")
