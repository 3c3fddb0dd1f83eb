"""TLS role: the host's public certificate from ACME (certbot, HTTP-01), renewed by certbot.timer."""

from __future__ import annotations

import hashlib
import shlex
from collections.abc import Iterable, Sequence
from io import StringIO
from typing import Any
from urllib.parse import urlsplit

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.api.exceptions import DeployError
from pyinfra.facts.files import Sha1File
from pyinfra.operations import files, server

from app.host_layout import ACME_STANDALONE_PORT, API_PROXY_SERVICE, API_SERVICE
from postyard.topology import GROUPS, host_groups
from roles.support.inventory_secrets import INTERNAL_CA_PATH, install_internal_ca
from roles.support.peers import host_roles
from roles.support.staging import jinja_options
from roles.support.systemd_units import enabled_and_running, reload_units

__all__ = [
    "DEFAULTS", "LETS_ENCRYPT", "CERT_NAME", "CERT_DIR", "FULLCHAIN_PATH", "PRIVKEY_PATH", "HOOK_PATH",
    "CA_DROP_IN_PATH", "RELOADED_UNITS", "reloaded_units", "tls_names", "public_name", "check_settings",
    "certbot_command", "http01_port", "relay_wait_command",
    "request_record", "hook_context", "ca_drop_in_context", "deploy_tls",
    "packages",
]

LETS_ENCRYPT = "https://acme-v02.api.letsencrypt.org/directory"

DEFAULTS: dict[str, Any] = {
    # ACME directory to get the certificate from (pebble's in the testbed).
    "acme_directory": LETS_ENCRYPT,
    # Contact address for the ACME account; required by Let's Encrypt (expiry and policy notices).
    "acme_email": None,
    # Names on the certificate; unset: the host's name.
    "tls_names": None,
    # Trust the internal CA for the ACME server's own HTTPS (the testbed's pebble).
    "acme_trust_internal_ca": False,
}

CERT_NAME = "postyard"
CERT_DIR = f"/etc/letsencrypt/live/{CERT_NAME}"
FULLCHAIN_PATH = f"{CERT_DIR}/fullchain.pem"
PRIVKEY_PATH = f"{CERT_DIR}/privkey.pem"
HOOK_PATH = f"/etc/letsencrypt/renewal-hooks/deploy/{CERT_NAME}"
CA_DROP_IN_PATH = "/etc/systemd/system/certbot.service.d/postyard-ca.conf"
# What the certificate was last issued for: the names, the ACME directory and (other than 80) certbot's port.
REQUEST_RECORD_PATH = "/etc/postyard/tls/acme-request"

# The services that present the certificate, by the group whose hosts run them.
RELOADED_UNITS: dict[str, tuple[str, ...]] = {
    "mail": ("postfix.service", "dovecot.service"),
    "api": (f"{API_SERVICE}.service", f"{API_PROXY_SERVICE}.service"),
}


def packages(data: Any) -> tuple[str, ...]:
    """The Debian packages this role needs; the packages role installs them with every other role's."""
    return ("certbot",)


def reloaded_units(groups: Iterable[str]) -> tuple[str, ...]:
    """The units to reload after a renewal on a host in these groups, each once."""
    groups = set(groups)
    units: list[str] = []
    for group in GROUPS:
        if group in groups:
            units.extend(unit for unit in RELOADED_UNITS.get(group, ()) if unit not in units)
    return tuple(units)


def tls_names(data: Any, fallback: str) -> list[str]:
    """The names the host's public certificate covers; read with get(), since roles other than this one (the API's)
    ask too, outside this role's data defaults."""
    return list(data.get("tls_names") or [data.get("hostname") or fallback])


def public_name(names: list[str] | tuple[str, ...], own: str) -> str:
    """The name clients reach the API by: behind a load balancer, the name its certificate adds to the host's own."""
    return next((name for name in names if name != own), own)


def _is_lets_encrypt(directory: str) -> bool:
    hostname = urlsplit(directory).hostname or ""
    return hostname == "letsencrypt.org" or hostname.endswith(".letsencrypt.org")


def check_settings(directory: str, email: str | None, http01: bool) -> None:
    """Refuse settings certbot would fail on later, and less clearly."""
    if _is_lets_encrypt(directory) and not email:
        raise DeployError(
            "acme_email is not set: Let's Encrypt needs a contact address for the ACME account "
            "(set acme_email in group_data/all.py or the inventory)"
        )
    if not http01:
        raise DeployError(
            "acme_http01 is off, so the firewall keeps port 80 closed and HTTP-01 cannot validate: "
            "set acme_http01 = True"
        )


def certbot_command(directory: str, names: Sequence[str], email: str | None, port: int = 80) -> str:
    """certbot certonly for the one certificate, standalone HTTP-01 on the port (80, or where the api host's proxy
    relays it behind a load balancer), ECDSA P-256.

    Runs only when a new certificate is wanted, hence --force-renewal (a changed directory with
    the same names would otherwise keep the old certificate).
    """
    argv = [
        "certbot", "certonly", "--non-interactive", "--agree-tos",
        "--standalone", "--preferred-challenges", "http-01", "--http-01-port", str(port),
        "--server", directory, "--cert-name", CERT_NAME,
        "--key-type", "ecdsa", "--elliptic-curve", "secp256r1",
        "--force-renewal", "--deploy-hook", HOOK_PATH,
    ]
    argv += ["--email", email, "--no-eff-email"] if email else ["--register-unsafely-without-email"]
    for name in names:
        argv += ["--domain", name]
    return shlex.join(argv)


def http01_port(roles: Iterable[str]) -> int:
    """Where certbot listens while it validates: 80, or, behind a load balancer, where every api host's proxy
    (which holds 80 there) relays the requests to."""
    return ACME_STANDALONE_PORT if "api_proxy" in roles else 80


# How long the deploy waits for the load balancer to take an api host's relay in (a few health checks).
RELAY_WAIT_SECONDS = 60


def relay_wait_command(name: str) -> str:
    """Ask for a challenge through the load balancer until an api host's relay answers: the balancer takes a
    relay in only once its health checks pass, and ACME would otherwise find nobody there."""
    request = f"GET /.well-known/acme-challenge/postyard-probe HTTP/1.0\\r\\nHost: {name}\\r\\n\\r\\n"
    probe = f"exec 3<>/dev/tcp/{name}/80 && printf '{request}' >&3 && head -c 8 <&3 | grep -q '^HTTP/1'"
    return (f"for attempt in $(seq {RELAY_WAIT_SECONDS}); do timeout 3 bash -c {shlex.quote(probe)} && exit 0; "
            f"sleep 1; done; echo 'no api host answers ACME requests for {name} through the load balancer' >&2; "
            "exit 1")


def request_record(directory: str, names: Sequence[str], port: int = 80) -> str:
    """What the certificate was issued for; certbot's renewals keep the port it validated on, so a new port asks
    again (records of port 80 name none, as before there was another)."""
    return f"directory={directory}\nnames={','.join(names)}\n" + (f"http01_port={port}\n" if port != 80 else "")


def hook_context(groups: Iterable[str]) -> dict[str, Any]:
    return {"units": reloaded_units(groups)}


def ca_drop_in_context() -> dict[str, Any]:
    return {"ca_bundle": INTERNAL_CA_PATH}


@deploy("TLS", data_defaults=DEFAULTS)
def deploy_tls() -> None:
    directory = host.data.acme_directory
    # acme_http01 is the firewall's setting (it opens port 80): read it with the firewall's default
    check_settings(directory, host.data.acme_email, bool(host.data.get("acme_http01")))
    names = tls_names(host.data, host.name)
    trust_internal = bool(host.data.acme_trust_internal_ca)

    files.template(
        name=f"Upload {HOOK_PATH}", src="templates/tls/deploy-hook.sh.j2", dest=HOOK_PATH,
        mode="755", jinja_env_kwargs=jinja_options(), **hook_context(host_groups(host.groups)),
    )
    if trust_internal:
        install_internal_ca()
        drop_in = files.template(
            name=f"Upload {CA_DROP_IN_PATH}", src="templates/tls/certbot-ca.conf.j2", dest=CA_DROP_IN_PATH,
            jinja_env_kwargs=jinja_options(), **ca_drop_in_context(),
        )
    else:
        drop_in = files.file(name=f"Remove {CA_DROP_IN_PATH}", path=CA_DROP_IN_PATH, present=False)
    reload_units(drop_in)

    # Facts are read before anything runs: issue when there is no certificate or it was issued
    # for other names, another directory or another port. The record is written only after certbot succeeded.
    port = http01_port(host_roles())
    record = request_record(directory, names, port)
    issued = host.get_fact(Sha1File, path=FULLCHAIN_PATH) is not None
    same_request = host.get_fact(Sha1File, path=REQUEST_RECORD_PATH) == hashlib.sha1(record.encode()).hexdigest()
    if not (issued and same_request):
        shared = [name for name in names if name != (host.data.get("hostname") or host.name)]
        if port != 80 and shared:
            server.shell(name=f"Wait until the load balancer passes ACME's requests for {shared[0]} on",
                         commands=[relay_wait_command(shared[0])])
        server.shell(
            name=f"Get the certificate for {', '.join(names)} from {directory}",
            commands=[certbot_command(directory, names, host.data.acme_email, port)],
            _env={"REQUESTS_CA_BUNDLE": INTERNAL_CA_PATH} if trust_internal else {},
            # One host at a time: ACME checks the API's name of several api hosts through the load balancer, and
            # each api host's proxy relays the check to the one whose certbot is listening.
            _serial=True,
        )
    files.put(
        name=f"Record the request in {REQUEST_RECORD_PATH}", src=StringIO(record),
        dest=REQUEST_RECORD_PATH, mode="644",
    )
    enabled_and_running(name="Enable certbot.timer", service="certbot.timer")
