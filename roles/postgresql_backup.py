"""Nightly PostgreSQL backups, encrypted with age on the database host before they are written.

The age identity (private key) stays in the inventory's secret store on the control machine; the
host holds only the recipient (public key), so it can write backups but never read them.
"""

from __future__ import annotations

import subprocess
from typing import Any

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import apt, files, systemd
from pyinfra.operations.util import any_changed

from roles.inventory_secrets import secret_store
from roles.postgresql import DEFAULTS as POSTGRESQL_DEFAULTS
from roles.staging import jinja_options

__all__ = ["DEFAULTS", "BACKUP_SCRIPT", "age_identity", "backup_context", "age_recipient", "deploy_postgresql_backup"]

DEFAULTS: dict[str, Any] = {
    # Where encrypted dumps are written on the database host, and for how many days they are kept.
    "backup_dir": "/var/backups/postyard",
    "backup_keep_days": 14,
    # systemd OnCalendar expression for the nightly run.
    "backup_schedule": "*-*-* 02:30:00",
    # The database to dump (the postgresql role's setting).
    "postgresql_database": POSTGRESQL_DEFAULTS["postgresql_database"],
}

BACKUP_SCRIPT = "/usr/local/sbin/postyard-backup"
IDENTITY_SECRET = "backup-age-identity"


def _generate_identity() -> bytes:
    return subprocess.run(["age-keygen"], capture_output=True, check=True).stdout


def age_identity() -> str:
    """The age identity file (private key), generated on first use on the control machine."""
    return secret_store().get_bytes(IDENTITY_SECRET, _generate_identity).decode()


def age_recipient(identity: str) -> str:
    """The public key line that age-keygen writes into the identity file."""
    for line in identity.splitlines():
        if line.startswith("# public key: "):
            return line.removeprefix("# public key: ").strip()
    raise ValueError("the age identity has no public key line")


def backup_context(data: Any, recipient: str) -> dict[str, Any]:
    return {
        "recipient": recipient,
        "backup_dir": data.backup_dir,
        "keep_days": data.backup_keep_days,
        "schedule": data.backup_schedule,
        "database": data.postgresql_database,
    }


@deploy("PostgreSQL backups", data_defaults=DEFAULTS)
def deploy_postgresql_backup() -> None:
    apt.packages(name="Install age", packages=["age"], no_recommends=True)
    files.directory(
        name=f"Create {host.data.backup_dir}", path=host.data.backup_dir,
        user="postgres", group="postgres", mode="700",
    )
    context = backup_context(host.data, age_recipient(age_identity()))
    files.template(
        name=f"Upload {BACKUP_SCRIPT}", src="templates/backup/postyard-backup.sh.j2", dest=BACKUP_SCRIPT,
        mode="755", jinja_env_kwargs=jinja_options(), **context,
    )
    units = [
        files.template(
            name=f"Upload /etc/systemd/system/postyard-backup.{kind}",
            src=f"templates/backup/postyard-backup.{kind}.j2",
            dest=f"/etc/systemd/system/postyard-backup.{kind}",
            mode="644", jinja_env_kwargs=jinja_options(), **context,
        )
        for kind in ("service", "timer")
    ]
    systemd.daemon_reload(name="Reload systemd units", _if=any_changed(*units))
    systemd.service(
        name="Enable the nightly backup", service="postyard-backup.timer", running=True, enabled=True,
    )
