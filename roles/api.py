"""The API: granian on 443 with the host's ACME certificate, TLS 1.2 minimum, as a hardened systemd
unit (roles/support/app_units.py), with its own settings (the /metrics token, HSTS preload,
security.txt, sign-up, the system sender) in a second environment file.
"""

from __future__ import annotations

from io import StringIO
from typing import Any

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import files

from app import tls_policy
from app.host_layout import API_CERTIFICATE, API_KEY_FILE, API_PORT, API_SERVICE
from roles import app_runtime
from roles.support.app_units import AppUnit, install_app_units
from roles.support.inventory_secrets import secret
from roles.tls import FULLCHAIN_PATH, PRIVKEY_PATH, public_name, tls_names

__all__ = ["API_ENV", "DEFAULTS", "METRICS_TOKEN_SECRET", "api_settings", "api_units", "deploy_api",
           "security_contact"]

DEFAULTS: dict[str, Any] = {
    # granian worker processes serving the API on each api host.
    "api_workers": 2,
    # Lowest TLS version on 443: tls1.2 (Mozilla "intermediate") or tls1.3. granian cannot set a server
    # cipher order (see docs/security.md); with tls1.3 only, no client picks among TLS 1.2 suites.
    "api_tls_protocol_min": tls_policy.GRANIAN_MIN_PROTOCOL,
    # HSTS `preload`: turn on only for a domain that is (or is about to be) on the browsers' preload list.
    "hsts_preload": False,
    # security.txt (RFC 9116) Contact URIs, comma-separated; None: mailto:security@ the API host's domain.
    "security_contact": None,
    # security.txt's Expires lies this many days ahead of each request (RFC 9116: less than a year).
    "security_txt_days": 180,
    # Who may sign up: "invite" (with a one-time invite), "open" (anyone; new teams send once an operator
    # approves them) or "closed" (nobody). See docs/operators.md.
    "signup": "invite",
    # The address the instance's own mail (password resets) comes from, e.g. "no-reply@ops.example.com", shown
    # as "Postyard <...>"; its domain must be verified by a team, which sends it. Empty: no password reset by
    # email. See docs/operators.md.
    "system_sender": "",
}

# Settings of the API alone; like app.env, readable by root and the postyard group only.
API_ENV = "/etc/postyard/api.env"
# The bearer token /metrics asks for: generated once into the inventory's secret store.
METRICS_TOKEN_SECRET = "metrics-token"


def api_units(workers: int, tls_protocol_min: str = DEFAULTS["api_tls_protocol_min"]) -> tuple[AppUnit, ...]:
    # The certificate stays root-only in certbot's directory; root copies it into the unit's own
    # runtime directory before each start, so a renewal's restart picks up the new one.
    copy = "+/usr/bin/install -m 0600 -o postyard -g postyard"
    return (
        AppUnit(API_SERVICE, "Postyard API (granian, HTTPS)",
                f"{app_runtime.PYTHON} -m app.api_server --interface asgi --factory --host 0.0.0.0 --port {API_PORT} "
                f"--workers {workers} --no-ws --ssl-certificate {API_CERTIFICATE} --ssl-keyfile {API_KEY_FILE} "
                f"--ssl-protocol-min {tls_protocol_min} --no-access-log app.asgi:create_served_app",
                exec_start_pre=(f"{copy} {FULLCHAIN_PATH} {API_CERTIFICATE}",
                                f"{copy} {PRIVKEY_PATH} {API_KEY_FILE}"),
                # systemd calls the unit active once the API answers, not when granian's process starts.
                exec_start_post=(f"{app_runtime.PYTHON} -m app.wait_ready --port {API_PORT}",),
                runtime_directory=API_SERVICE, capabilities=("CAP_NET_BIND_SERVICE",), extra_env_files=(API_ENV,)),
    )


def security_contact() -> str:
    """security.txt's Contact: the setting, else mailto:security@ the domain the API host is named in."""
    if host.data.get("security_contact"):
        return str(host.data.security_contact)
    name = str(host.data.get("hostname") or host.name)
    return f"mailto:security@{name.split('.', 1)[1] if '.' in name else name}"


def api_settings() -> dict[str, str]:
    """The API's own settings (POSTYARD_* variables, see app/config.py)."""
    own_name = host.data.get("hostname") or host.name
    return {
        "POSTYARD_METRICS_TOKEN": secret(METRICS_TOKEN_SECRET),
        "POSTYARD_HSTS_PRELOAD": "true" if host.data.hsts_preload else "false",
        "POSTYARD_SECURITY_CONTACT": security_contact(),
        "POSTYARD_SECURITY_TXT_DAYS": str(int(host.data.security_txt_days)),
        "POSTYARD_SIGNUP": str(host.data.signup),
        "POSTYARD_SYSTEM_SENDER": str(host.data.system_sender or ""),
        # A password-reset link names the request's host: only the names of the API's certificate.
        "POSTYARD_CONSOLE_HOSTS": ",".join(tls_names(host.data, host.name)),
        # The base of links the API hands out: attachments' downloads, and the tracking pixel and redirects.
        "POSTYARD_PUBLIC_URL": f"https://{public_name(tls_names(host.data, host.name), own_name)}",
    }


@deploy("API", data_defaults=DEFAULTS)
def deploy_api() -> None:
    settings = files.put(
        name=f"Upload {API_ENV}", src=StringIO(app_runtime.render_env(api_settings())), dest=API_ENV,
        user="root", group="postyard", mode="640",
    )
    install_app_units(api_units(int(host.data.api_workers), str(host.data.api_tls_protocol_min)), settings)
