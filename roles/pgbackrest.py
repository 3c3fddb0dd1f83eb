"""Point-in-time recovery: pgBackRest archives every WAL segment and takes full and differential backups.

The repository is encrypted (aes-256-cbc, a passphrase from the inventory's secret store) and lives on the
host's system disk, apart from the data volume. With `backup_remote` set, it is mirrored to
`<backup_remote>/pgbackrest` over rsync and SSH, as it is: encrypted.
`postyard restore --to <time>` (postyard/pitr.py) restores from it.
"""

from __future__ import annotations

from io import StringIO
from typing import Any

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.facts.server import Command
from pyinfra.operations import files, server, systemd

from roles.postgresql import CONFIG_DIR, DATA_DIR
from roles.postgresql import UNIT as POSTGRESQL_UNIT
from roles.postgresql_backup import DEFAULTS as BACKUP_DEFAULTS
from roles.postgresql_backup import remote_shell
from roles.support.inventory_secrets import secret
from roles.support.staging import jinja_options
from roles.support.systemd_units import UNIT_DIR, install_unit, reload_units

__all__ = ["BACKUP_KINDS", "CIPHER_SECRET", "CONFIG", "DEFAULTS", "MIRROR_UNIT", "STANZA", "archiving_context",
           "mirror_context", "packages", "pgbackrest_config", "unit_context", "unit_names", "deploy_pgbackrest"]

DEFAULTS: dict[str, Any] = {
    # The repository on the host, and for how many days a point in time stays restorable.
    "pitr_repository": "/var/lib/pgbackrest",
    "pitr_retention_days": 30,
    # systemd OnCalendar expressions: a full backup weekly, a differential one the other nights.
    "pitr_full_schedule": "Sun *-*-* 01:00:00",
    "pitr_diff_schedule": "Mon..Sat *-*-* 01:00:00",
    # A WAL segment is archived at the latest this many seconds after a write, even when it is not full.
    "pitr_archive_timeout": 60,
    # With backup_remote set (the postgresql_backup role's setting): how often the repository is mirrored to
    # <backup_remote>/pgbackrest, as an OnCalendar expression.
    "pitr_mirror_schedule": "*:0/5",
}

STANZA = "postyard"
CONFIG = "/etc/pgbackrest/pgbackrest.conf"
CIPHER_SECRET = "pgbackrest-cipher"
# Debian's package creates it for pgBackRest's spool; its locks go there too, where every caller sees them.
SPOOL = "/var/spool/pgbackrest"
ARCHIVE_SETTINGS = f"{CONFIG_DIR}/conf.d/pgbackrest.conf"
BACKUP_KINDS = ("full", "diff")
MIRROR_UNIT = "postyard-pitr-mirror"


def packages(data: Any) -> tuple[str, ...]:
    """The Debian packages this role needs; the packages role installs them with every other role's."""
    return ("pgbackrest",)


def unit_names(mirrored: bool) -> list[str]:
    """The oneshot services of the backups, and of the off-host mirror when there is one."""
    return [f"postyard-pitr-{kind}.service" for kind in BACKUP_KINDS] + ([f"{MIRROR_UNIT}.service"] if mirrored else [])


def pgbackrest_config(data: Any, cipher: str) -> str:
    """/etc/pgbackrest/pgbackrest.conf, which pgBackRest reads before Debian's /etc/pgbackrest.conf."""
    return "\n".join([
        "# Managed by postyard (roles/pgbackrest.py).",
        "[global]",
        f"repo1-path={data.pitr_repository}",
        "repo1-cipher-type=aes-256-cbc",
        f"repo1-cipher-pass={cipher}",
        "repo1-retention-full-type=time",
        f"repo1-retention-full={data.pitr_retention_days}",
        "compress-type=zst",
        "start-fast=y",
        f"lock-path={SPOOL}",
        "log-level-console=info",
        "log-level-file=off",
        "",
        f"[{STANZA}]",
        f"pg1-path={DATA_DIR}",
        "pg1-socket-path=/var/run/postgresql",
        "",
    ])


def archiving_context(data: Any) -> dict[str, Any]:
    return {"stanza": STANZA, "archive_timeout": data.pitr_archive_timeout}


def unit_context(data: Any, kind: str) -> dict[str, Any]:
    """The context of a backup kind's service and timer."""
    return {"kind": kind, "stanza": STANZA, "schedule": getattr(data, f"pitr_{kind}_schedule"),
            "read_write_paths": f"{data.pitr_repository} {SPOOL}"}


def mirror_context(data: Any) -> dict[str, Any]:
    return {"repository": data.pitr_repository, "destination": f"{data.backup_remote}/pgbackrest",
            "rsh": remote_shell(data), "schedule": data.pitr_mirror_schedule}


def _has_stanza(repository: str) -> bool:
    check = f"test -e {repository}/backup/{STANZA}/backup.info && echo yes || echo no"
    return host.get_fact(Command, command=check).strip() == "yes"


def _mirror_off_the_host() -> None:
    service = files.template(
        name=f"Install {MIRROR_UNIT}.service", src="templates/pgbackrest/mirror.service.j2",
        dest=f"{UNIT_DIR}/{MIRROR_UNIT}.service", mode="644", create_remote_dir=False,
        jinja_env_kwargs=jinja_options(), **mirror_context(host.data),
    )
    install_unit(f"{MIRROR_UNIT}.timer", "templates/pgbackrest/mirror.timer.j2", restart_on=(service,),
                 label="the repository's mirror timer", **mirror_context(host.data))


def _no_mirror() -> None:
    systemd.service(name="Stop the repository's mirror timer", service=f"{MIRROR_UNIT}.timer", running=False,
                    enabled=False)
    removed = [files.file(name=f"Remove {MIRROR_UNIT}.{kind}", path=f"{UNIT_DIR}/{MIRROR_UNIT}.{kind}",
                          present=False) for kind in ("timer", "service")]
    reload_units(*removed)


@deploy("Point-in-time recovery", data_defaults={**DEFAULTS, "backup_remote": BACKUP_DEFAULTS["backup_remote"],
                                                 "backup_remote_port": BACKUP_DEFAULTS["backup_remote_port"]})
def deploy_pgbackrest() -> None:
    repository = host.data.pitr_repository
    files.directory(name=f"Create {repository}", path=repository, user="postgres", group="postgres", mode="750")
    files.directory(name="Create /etc/pgbackrest", path="/etc/pgbackrest", user="postgres", group="postgres",
                    mode="750")
    files.put(
        name=f"Upload {CONFIG}", src=StringIO(pgbackrest_config(host.data, secret(CIPHER_SECRET))), dest=CONFIG,
        user="postgres", group="postgres", mode="600",
    )
    archiving = files.template(
        name=f"Upload {ARCHIVE_SETTINGS}", src="templates/pgbackrest/archiving.conf.j2", dest=ARCHIVE_SETTINGS,
        user="postgres", group="postgres", mode="644", jinja_env_kwargs=jinja_options(),
        **archiving_context(host.data),
    )
    # archive_mode takes a restart; it happens once, when archiving is first turned on.
    systemd.service(name="Restart PostgreSQL to archive WAL", service=POSTGRESQL_UNIT, restarted=True,
                    _if=archiving.did_change)
    for kind in BACKUP_KINDS:
        service = files.template(
            name=f"Install postyard-pitr-{kind}.service", src="templates/pgbackrest/backup.service.j2",
            dest=f"{UNIT_DIR}/postyard-pitr-{kind}.service", mode="644", create_remote_dir=False,
            jinja_env_kwargs=jinja_options(), **unit_context(host.data, kind),
        )
        install_unit(f"postyard-pitr-{kind}.timer", "templates/pgbackrest/backup.timer.j2", restart_on=(service,),
                     label=f"the {kind} backup timer", **unit_context(host.data, kind))
    if host.data.backup_remote:
        _mirror_off_the_host()
    else:
        _no_mirror()
    if not _has_stanza(repository):
        server.shell(name="Create the repository", _su_user="postgres",
                     commands=[f"pgbackrest --stanza={STANZA} stanza-create", f"pgbackrest --stanza={STANZA} check"])
        # through its unit, so the host report shows how it went
        server.shell(name="Take the first full backup", commands=["systemctl start postyard-pitr-full.service"])
