"""Host report role: every host reports its own status to the database once a minute (app/host_report.py),
for the operators' status page, as `postyard_reporter`, a role that may only call postyard_report_host."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path
from typing import Any

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import files

from app.db import roles as db_roles
from postyard.topology import host_groups
from roles import app_runtime, pgbackrest, postgresql, postgresql_backup, tls
from roles.support.database_client import database_login
from roles.support.inventory_secrets import INTERNAL_CA_PATH, INTERNAL_TLS_DIR
from roles.support.peers import host_roles
from roles.support.systemd_units import install_unit

__all__ = [
    "BACKUP_UNIT", "SCRIPT", "SETTINGS", "UNIT", "deploy_host_report", "packages", "report_settings", "unit_context",
]

SCRIPT = "/usr/local/lib/postyard/host-report.py"
SETTINGS = "/etc/postyard/host-report.json"
PASSFILE = "/etc/postyard/host-report.pgpass"
UNIT = "postyard-host-report"
BACKUP_UNIT = "postyard-backup.service"
SOURCE = Path(__file__).resolve().parents[1] / "app" / "host_report.py"
# File systems worth watching where they exist: the database's, the backups', Postfix's queue.
DATA_PATHS = ("/var/lib/postgresql", "/var/spool/postfix")


def packages(data: Any) -> tuple[str, ...]:
    """The Debian packages this role needs; the packages role installs them with every other role's."""
    return ("python3", "postgresql-client", "openssl", "bind9-host")


def _remote_without_user(remote: str | None) -> str | None:
    """Where backups are copied, without the login name."""
    return remote.split("@", 1)[-1] if remote else None


def report_settings() -> dict[str, Any]:
    """What this host's report covers, from its groups and settings."""
    groups = host_groups(host.groups)
    name = host.data.get("hostname") or host.name
    backup_dir = host.data.get("backup_dir", postgresql_backup.DEFAULTS["backup_dir"])
    settings: dict[str, Any] = {
        "host": name,
        "groups": list(groups),
        "release": app_runtime.code_version(),
        "database_url": database_login(db_roles.REPORTER).libpq_url(PASSFILE),
        "disk_paths": ["/", *DATA_PATHS, *([backup_dir] if "db" in groups else [])],
        "certificates": {"internal CA": INTERNAL_CA_PATH, "public (ACME)": tls.FULLCHAIN_PATH},
        "internal_certificates": f"{INTERNAL_TLS_DIR}/*/server.crt",
    }
    if "mail" in groups:
        addresses = [a for a in (host.data.get("public_address"), host.data.get("public_address6")) if a]
        settings.update(sending_addresses=addresses, helo_name=name, postfix=True)
    if "db" in groups:
        settings["backups"] = {"directory": backup_dir, "unit": BACKUP_UNIT,
                               "remote": _remote_without_user(host.data.get("backup_remote"))}
    settings.update(_point_in_time_settings(host_roles()))
    return settings


def _point_in_time_settings(roles: tuple[str, ...]) -> dict[str, Any]:
    """What the report shows of point-in-time recovery: the WAL archive where PostgreSQL runs, the backup units
    where the repository is."""
    archive_status = f"{postgresql.DATA_DIR}/pg_wal/archive_status"
    if "pgbackrest" in roles:
        units = pgbackrest.unit_names(bool(host.data.get("backup_remote")))
        return {"point_in_time": {"archive_status": archive_status, "units": units}}
    if "pgbackrest_member" in roles:
        return {"point_in_time": {"archive_status": archive_status, "units": []}}
    if "pgbackrest_repository" in roles:
        return {"point_in_time": {"archive_status": None, "units": pgbackrest.unit_names(False)}}
    return {}


def unit_context() -> dict[str, str]:
    return {"script": SCRIPT, "settings": SETTINGS, "ca": INTERNAL_CA_PATH}


@deploy("Host report")
def deploy_host_report() -> None:
    files.directory(name="Create /usr/local/lib/postyard", path="/usr/local/lib/postyard", mode="755")
    changed = [
        files.put(name=f"Upload {SCRIPT}", src=str(SOURCE), dest=SCRIPT, mode="644"),
        files.put(name=f"Upload {PASSFILE}", src=StringIO(database_login(db_roles.REPORTER).pgpass_line()),
                  dest=PASSFILE, user="root", group="root", mode="600"),
        files.put(name=f"Upload {SETTINGS}", src=StringIO(json.dumps(report_settings(), indent=2) + "\n"),
                  dest=SETTINGS, user="root", group="root", mode="600"),
    ]
    install_unit(f"{UNIT}.service", f"templates/host_report/{UNIT}.service.j2", restart_on=changed,
                 label="the host report", **unit_context())
