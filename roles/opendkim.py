"""OpenDKIM role: signs outbound mail with every key the API holds, synced from PostgreSQL.

Keys live AES-256-GCM encrypted in PostgreSQL; `postyard-dkim-sync` (app/mailhost/dkim_sync.py)
decrypts them into a directory only the opendkim user can read, swaps the set in atomically and
reloads OpenDKIM (SIGUSR1). Postfix is never restarted for a key change.
"""

from __future__ import annotations

from typing import Any

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import apt, files, server, systemd
from pyinfra.operations.util import any_changed

from roles import app_runtime
from roles.database_client import data_keys, database_login
from roles.inventory_secrets import INTERNAL_CA_PATH, install_internal_ca
from roles.staging import install_validated_template, jinja_options

__all__ = ["DEFAULTS", "SOCKET", "DKIM_DIR", "deploy_opendkim", "sync_env_context"]

DEFAULTS: dict[str, Any] = {
    # One syslog line per signed message; off by default: it costs throughput and says little.
    "opendkim_log_success": False,
}

SOCKET = "/run/opendkim/opendkim.sock"
DKIM_DIR = "/var/lib/postyard/dkim"
SYNC_ENV = "/etc/postyard/dkim-sync.env"
SYNC_UNIT = "postyard-dkim-sync.service"


def sync_env_context(database_url: str, keys: str) -> dict[str, Any]:
    return {"database_url": database_url, "data_keys": keys, "dkim_dir": DKIM_DIR, "ca_path": INTERNAL_CA_PATH}


@deploy("OpenDKIM", data_defaults=DEFAULTS)
def deploy_opendkim() -> None:
    apt.packages(name="Install OpenDKIM", packages=["opendkim"], no_recommends=True)
    app_changes = app_runtime.deploy_app_runtime()
    ca = install_internal_ca()
    files.directory(name=f"Create {DKIM_DIR}", path=DKIM_DIR, user="opendkim", group="opendkim", mode="700")
    # An empty key set until the sync writes one, so OpenDKIM can start on a fresh host.
    files.directory(name="Create the current key set", path=f"{DKIM_DIR}/current", user="opendkim",
                    group="opendkim", mode="700")
    files.file(name="Create an empty KeyTable", path=f"{DKIM_DIR}/current/KeyTable", user="opendkim",
               group="opendkim", mode="600")
    files.file(name="Create an empty SigningTable", path=f"{DKIM_DIR}/current/SigningTable", user="opendkim",
               group="opendkim", mode="600")
    config = install_validated_template(
        "templates/opendkim/opendkim.conf.j2", "/etc/opendkim.conf",
        validate="opendkim -n -x {path}", log_success=host.data.opendkim_log_success,
        dkim_dir=DKIM_DIR, socket=SOCKET,
    )
    env = files.template(
        name=f"Upload {SYNC_ENV}", src="templates/opendkim/dkim-sync.env.j2", dest=SYNC_ENV,
        user="opendkim", group="opendkim", mode="600", jinja_env_kwargs=jinja_options(),
        **sync_env_context(database_login("postyard_mail").libpq_url(), data_keys()),
    )
    unit = files.template(
        name=f"Install {SYNC_UNIT}", src="templates/opendkim/postyard-dkim-sync.service.j2",
        dest=f"/etc/systemd/system/{SYNC_UNIT}", mode="644", jinja_env_kwargs=jinja_options(),
        env_file=SYNC_ENV, source=app_runtime.SOURCE, python=f"{app_runtime.VENV}/bin/python", dkim_dir=DKIM_DIR,
    )
    server.user(name="Let Postfix use the OpenDKIM socket", user="postfix", groups=["opendkim"], append=True)
    systemd.service(name="Restart OpenDKIM", service="opendkim.service", restarted=True, _if=config.did_change)
    systemd.service(name="Enable OpenDKIM", service="opendkim.service", running=True, enabled=True)
    systemd.daemon_reload(name="Reload systemd units", _if=unit.did_change)
    systemd.service(
        name="Restart the DKIM key sync", service=SYNC_UNIT, restarted=True,
        _if=any_changed(env, unit, ca, *app_changes),
    )
    systemd.service(name="Enable the DKIM key sync", service=SYNC_UNIT, running=True, enabled=True)
