"""OpenDKIM role: signs outbound mail with every key the API holds, synced from PostgreSQL.

Keys live AES-256-GCM encrypted in PostgreSQL; `postyard-dkim-sync` (app/mailhost/dkim_sync.py)
decrypts them into a directory only the opendkim user can read, swaps the set in atomically and
reloads OpenDKIM (SIGUSR1). Postfix is never restarted for a key change. The same service writes
Postfix's routing maps into a directory of its own (app/mailhost/postfix_maps.py, roles/postfix.py).

OpenDKIM 2.11 signs with one algorithm per process, so RSA keys are signed by Debian's opendkim
service and Ed25519 keys by a second instance; Postfix passes each message through both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import files

from app.db import roles as db_roles
from app.host_layout import DKIM_DIR, DKIM_SYNC_SERVICE, OPENDKIM_PID_FILE, POSTFIX_MAPS_DIR
from app.mailhost.postfix_maps import DIRECTORY_MODE
from roles import app_runtime
from roles.support.database_client import data_keys, database_login
from roles.support.inventory_secrets import INTERNAL_CA_PATH, install_internal_ca
from roles.support.staging import install_validated_template, jinja_options
from roles.support.system_users import declare_users
from roles.support.systemd_units import install_unit, start_unit

__all__ = ["DEFAULTS", "Instance", "INSTANCES", "MILTER_SOCKETS", "SYNC_ENV", "SYNC_UNIT", "SYNC_USER",
           "deploy_opendkim", "packages", "sync_env_context"]

DEFAULTS: dict[str, Any] = {
    # One syslog line per signed message; off by default: it costs throughput and says little.
    "opendkim_log_success": False,
}


@dataclass(frozen=True)
class Instance:
    """One OpenDKIM process and the key tables it signs with (see app/mailhost/dkim_sync.py)."""

    algorithm: str
    suffix: str
    unit: str
    config: str
    socket: str
    pid_file: str


INSTANCES: tuple[Instance, ...] = (
    Instance("rsa-sha256", "", "opendkim.service", "/etc/opendkim.conf", "/run/opendkim/opendkim.sock",
             OPENDKIM_PID_FILE),
    Instance("ed25519-sha256", ".ed25519", "postyard-opendkim-ed25519.service", "/etc/opendkim-ed25519.conf",
             "/run/opendkim/ed25519.sock", "/run/opendkim/ed25519.pid"),
)
MILTER_SOCKETS = ",".join(f"unix:{i.socket}" for i in INSTANCES)
SYNC_ENV = "/etc/postyard/dkim-sync.env"
# OpenDKIM's user: OpenDKIM runs as it, and the mail-host sync too, owning what it writes.
SYNC_USER = "opendkim"
SYNC_UNIT = f"{DKIM_SYNC_SERVICE}.service"


def packages(data: Any) -> tuple[str, ...]:
    """The Debian packages this role needs; the packages role installs them with every other role's."""
    return ("opendkim",)


def sync_env_context(database_url: str, keys: str) -> dict[str, Any]:
    return {"database_url": database_url, "data_keys": keys, "dkim_dir": DKIM_DIR, "ca_path": INTERNAL_CA_PATH,
            "pid_files": ",".join(i.pid_file for i in INSTANCES), "postfix_maps_dir": POSTFIX_MAPS_DIR}


@deploy("OpenDKIM", data_defaults=DEFAULTS)
def deploy_opendkim() -> None:
    ca = install_internal_ca()
    files.directory(name=f"Create {DKIM_DIR}", path=DKIM_DIR, user=SYNC_USER, group=SYNC_USER, mode="700")
    # An empty key set until the sync writes one, so OpenDKIM can start on a fresh host.
    files.directory(name="Create the current key set", path=f"{DKIM_DIR}/current", user=SYNC_USER,
                    group=SYNC_USER, mode="700")
    # The sync's own; Postfix reads the maps in it, which the Postfix role has the sync write before Postfix uses them.
    files.directory(name=f"Create {POSTFIX_MAPS_DIR}", path=POSTFIX_MAPS_DIR, user=SYNC_USER, group=SYNC_USER,
                    mode=f"{DIRECTORY_MODE:o}")
    for instance in host.loop(INSTANCES):
        for table in host.loop(("KeyTable", "SigningTable")):
            files.file(name=f"Create an empty {table}{instance.suffix}",
                       path=f"{DKIM_DIR}/current/{table}{instance.suffix}", user=SYNC_USER, group=SYNC_USER,
                       mode="600")

    for instance in host.loop(INSTANCES):
        config = install_validated_template(
            "templates/opendkim/opendkim.conf.j2", instance.config, validate="opendkim -n -x {path}",
            log_success=host.data.opendkim_log_success, dkim_dir=DKIM_DIR, instance=instance,
        )
        units = []
        if instance.unit != "opendkim.service":
            units.append(files.template(
                name=f"Install {instance.unit}", src="templates/opendkim/postyard-opendkim.service.j2",
                dest=f"/etc/systemd/system/{instance.unit}", mode="644", jinja_env_kwargs=jinja_options(),
                instance=instance,
            ))
        units.append(files.template(
            name=f"Sandbox {instance.unit}", src="templates/opendkim/sandbox.conf.j2",
            dest=f"/etc/systemd/system/{instance.unit}.d/postyard-sandbox.conf", mode="644",
            jinja_env_kwargs=jinja_options(), service_user=SYNC_USER,
        ))
        start_unit(instance.unit, units, restart_on=[config])

    env = files.template(
        name=f"Upload {SYNC_ENV}", src="templates/opendkim/dkim-sync.env.j2", dest=SYNC_ENV,
        user=SYNC_USER, group=SYNC_USER, mode="600", jinja_env_kwargs=jinja_options(),
        **sync_env_context(database_login(db_roles.MAIL).libpq_url(), data_keys()),
    )
    # Postfix uses the OpenDKIM sockets.
    declare_users("postyard-opendkim", ["m postfix opendkim"])
    install_unit(
        SYNC_UNIT, "templates/opendkim/postyard-dkim-sync.service.j2", restart_on=[env, ca],
        label="the mail-host sync", env_file=SYNC_ENV, source=app_runtime.SOURCE,
        mailhost=app_runtime.MAILHOST_PROCESS, dkim_dir=DKIM_DIR, postfix_maps_dir=POSTFIX_MAPS_DIR,
        release=app_runtime.release_digest(), service_user=SYNC_USER,
    )
