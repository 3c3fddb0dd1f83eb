"""The app's long-running services, as hardened systemd units.

- mail hosts: the SMTP intake (mail submitted on 465/587 becomes an email before Postfix answers the
  client), the outbox worker (hands mail to Postfix on loopback, sends webhooks) and the Postfix
  event follower (delivery results from the journal become events);
- api hosts: the API, granian on 443 with the host's ACME certificate, TLS 1.2 minimum, with its own
  settings (the /metrics token, HSTS preload, security.txt) in a second environment file.

Every unit runs as the `postyard` user with systemd's sandboxing; only the API keeps one
capability (binding port 443).
"""

from __future__ import annotations

from dataclasses import dataclass
from io import StringIO
from typing import Any

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.api.operation import OperationMeta
from pyinfra.operations import files, systemd
from pyinfra.operations.util import any_changed

from roles import app_runtime
from roles.inventory_secrets import secret
from roles.staging import jinja_options
from roles.tls import FULLCHAIN_PATH, PRIVKEY_PATH

__all__ = ["API_ENV", "DEFAULTS", "INTAKE_SOCKET", "METRICS_TOKEN_SECRET", "AppUnit", "api_settings", "api_units",
           "deploy_api", "deploy_mail_services", "mail_units", "security_contact"]

DEFAULTS: dict[str, Any] = {
    # granian worker processes serving the API on each api host.
    "api_workers": 2,
    # Lowest TLS version on 443: tls1.2 (Mozilla "intermediate") or tls1.3. granian cannot set a server
    # cipher order (see docs/security.md); with tls1.3 only, no client picks among TLS 1.2 suites.
    "api_tls_protocol_min": "tls1.2",
    # HSTS `preload`: turn on only for a domain that is (or is about to be) on the browsers' preload list.
    "hsts_preload": False,
    # security.txt (RFC 9116) Contact URIs, comma-separated; None: mailto:security@ the API host's domain.
    "security_contact": None,
    # security.txt's Expires lies this many days ahead of each request (RFC 9116: less than a year).
    "security_txt_days": 180,
    # Who may sign up: "invite" (with a one-time invite), "open" (anyone; new teams send once an operator
    # approves them) or "closed" (nobody). See docs/operators.md.
    "signup": "invite",
}

PYTHON = f"{app_runtime.VENV}/bin/python"
SOURCE_ENV = f"PYTHONPATH={app_runtime.SOURCE}"
API_RUNTIME = "postyard-api"
INTAKE_RUNTIME = "postyard-intake"
# Postfix's submission listeners relay each message here (smtpd_proxy_filter).
INTAKE_SOCKET = f"/run/{INTAKE_RUNTIME}/smtp.sock"
# Settings of the API alone; like app.env, readable by root and the postyard group only.
API_ENV = "/etc/postyard/api.env"
# The bearer token /metrics asks for: generated once into the inventory's secret store.
METRICS_TOKEN_SECRET = "metrics-token"


@dataclass(frozen=True)
class AppUnit:
    name: str
    description: str
    exec_start: str
    after: tuple[str, ...] = ()
    group: str = "postyard"
    supplementary_groups: tuple[str, ...] = ()
    environment: tuple[str, ...] = (SOURCE_ENV,)
    extra_env_files: tuple[str, ...] = ()
    exec_start_pre: tuple[str, ...] = ()
    runtime_directory: str | None = None
    runtime_directory_mode: str = "0700"
    state_directory: str | None = None
    capabilities: tuple[str, ...] = ()
    memory_deny_write_execute: bool = True
    restart: str = "on-failure"
    proc_subset_pid: bool = True  # hide /proc beyond processes (journalctl needs the boot id there)
    # ProtectKernelTunables, ProtectControlGroups and ProtectProc; `journalctl -f` prints nothing
    # under them in a container, so the journal follower goes without.
    protect_kernel_views: bool = True

    @property
    def unit(self) -> str:
        return f"{self.name}.service"


def mail_units() -> tuple[AppUnit, ...]:
    return (
        # Group postfix: Postfix's smtpd (user postfix) connects to the socket in its runtime directory.
        AppUnit("postyard-smtp-intake", "Postyard SMTP intake: mail submitted on 465/587 becomes an email",
                f"{PYTHON} -m app.cli smtp-intake", group="postfix", runtime_directory=INTAKE_RUNTIME,
                runtime_directory_mode="0750",
                environment=(SOURCE_ENV, f"POSTYARD_SMTP_INTAKE_SOCKET={INTAKE_SOCKET}")),
        AppUnit("postyard-worker", "Postyard outbox worker: hands mail to Postfix, sends webhooks",
                f"{PYTHON} -m app.cli worker", after=("postfix.service",)),
        AppUnit("postyard-postfix-events", "Postyard: Postfix delivery results from the journal become events",
                f"{PYTHON} -m app.cli follow-postfix-log --journal", after=("postfix.service",),
                supplementary_groups=("systemd-journal",), state_directory="postyard-events",
                restart="always", proc_subset_pid=False, protect_kernel_views=False,
                environment=(SOURCE_ENV, "POSTYARD_POSTFIX_JOURNAL_CURSOR=/var/lib/postyard-events/journal.cursor")),
    )


def api_units(workers: int, tls_protocol_min: str = DEFAULTS["api_tls_protocol_min"]) -> tuple[AppUnit, ...]:
    # The certificate stays root-only in certbot's directory; root copies it into the unit's own
    # runtime directory before each start, so a renewal's restart picks up the new one.
    copy = "+/usr/bin/install -m 0600 -o postyard -g postyard"
    runtime = f"/run/{API_RUNTIME}"
    return (
        AppUnit("postyard-api", "Postyard API (granian, HTTPS)",
                f"{PYTHON} -m granian --interface asgi --factory --host 0.0.0.0 --port 443 --workers {workers} "
                f"--no-ws --ssl-certificate {runtime}/tls.crt --ssl-keyfile {runtime}/tls.key "
                f"--ssl-protocol-min {tls_protocol_min} --no-access-log app.asgi:create_app",
                exec_start_pre=(f"{copy} {FULLCHAIN_PATH} {runtime}/tls.crt", f"{copy} {PRIVKEY_PATH} {runtime}/tls.key"),
                runtime_directory=API_RUNTIME, capabilities=("CAP_NET_BIND_SERVICE",), extra_env_files=(API_ENV,)),
    )


def security_contact() -> str:
    """security.txt's Contact: the setting, else mailto:security@ the domain the API host is named in."""
    if host.data.get("security_contact"):
        return str(host.data.security_contact)
    name = str(host.data.get("hostname") or host.name)
    return f"mailto:security@{name.split('.', 1)[1] if '.' in name else name}"


def api_settings() -> dict[str, str]:
    """The API's own settings (POSTYARD_* variables, see app/config.py)."""
    return {
        "POSTYARD_METRICS_TOKEN": secret(METRICS_TOKEN_SECRET),
        "POSTYARD_HSTS_PRELOAD": "true" if host.data.hsts_preload else "false",
        "POSTYARD_SECURITY_CONTACT": security_contact(),
        "POSTYARD_SECURITY_TXT_DAYS": str(int(host.data.security_txt_days)),
        "POSTYARD_SIGNUP": str(host.data.signup),
    }


def _install(units: tuple[AppUnit, ...], settings: OperationMeta | None = None) -> None:
    for unit in host.loop(units):
        installed = files.template(
            name=f"Install {unit.unit}", src="templates/app/service.j2", dest=f"/etc/systemd/system/{unit.unit}",
            mode="644", jinja_env_kwargs=jinja_options(), unit=unit, env_file=app_runtime.APP_ENV,
            release=app_runtime.release_digest(),
        )
        systemd.daemon_reload(name="Reload systemd units", _if=installed.did_change)
        systemd.service(name=f"Restart {unit.unit}", service=unit.unit, restarted=True,
                        _if=any_changed(installed, *([settings] if settings else [])))
        systemd.service(name=f"Enable {unit.unit}", service=unit.unit, running=True, enabled=True)


@deploy("Mail host services", data_defaults=DEFAULTS)
def deploy_mail_services() -> None:
    _install(mail_units())


@deploy("API", data_defaults=DEFAULTS)
def deploy_api() -> None:
    settings = files.put(
        name=f"Upload {API_ENV}", src=StringIO(app_runtime.render_env(api_settings())), dest=API_ENV,
        user="root", group="postyard", mode="640",
    )
    _install(api_units(int(host.data.api_workers), str(host.data.api_tls_protocol_min)), settings)
