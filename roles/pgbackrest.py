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
from pyinfra.api.operation import OperationMeta
from pyinfra.facts.server import Command
from pyinfra.operations import files, server, systemd

from app.host_layout import PGBACKREST_PORT
from roles.postgresql import CONFIG_DIR, DATA_DIR
from roles.postgresql import UNIT as POSTGRESQL_UNIT
from roles.postgresql_backup import DEFAULTS as BACKUP_DEFAULTS
from roles.postgresql_backup import remote_shell
from roles.support.inventory_secrets import (
    INTERNAL_CA_PATH,
    install_internal_tls,
    internal_certificate_path,
    internal_key_path,
    secret,
)
from roles.support.staging import jinja_options
from roles.support.systemd_units import UNIT_DIR, install_unit, reload_units

__all__ = ["ARCHIVE_COMMAND", "BACKUP_KINDS", "CIPHER_SECRET", "CONFIG", "DEFAULTS", "MIRROR_UNIT", "SERVER_PORT",
           "SERVER_UNIT", "SOCKET_DIR", "SPOOL", "STANZA", "archiving_context", "common_settings", "config_text",
           "create_stanza_once", "deploy_pgbackrest", "install_backup_timers", "install_server", "install_tls",
           "make_config_directory", "make_repository", "mirror_context", "packages", "pgbackrest_config",
           "repository_settings", "server_context", "tls_client_settings", "tls_server_settings", "unit_context",
           "unit_names", "upload_config"]

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
ARCHIVE_COMMAND = f"pgbackrest --stanza={STANZA} archive-push %p"
ARCHIVE_SETTINGS = f"{CONFIG_DIR}/conf.d/pgbackrest.conf"
BACKUP_KINDS = ("full", "diff")
MIRROR_UNIT = "postyard-pitr-mirror"
# PostgreSQL's socket, where pgBackRest and Patroni reach it
SOCKET_DIR = "/var/run/postgresql"
# Where the database is clustered, the repository host and the members reach each other through pgBackRest's
# TLS server (roles/pgbackrest_member.py, roles/pgbackrest_repository.py).
SERVER_PORT = PGBACKREST_PORT
SERVER_UNIT = "postyard-pgbackrest-server"
TLS_SERVICE = "pgbackrest"


def packages(data: Any) -> tuple[str, ...]:
    """The Debian packages this role needs; the packages role installs them with every other role's."""
    return ("pgbackrest",)


def unit_names(mirrored: bool) -> list[str]:
    """The oneshot services of the backups, and of the off-host mirror when there is one."""
    return [f"postyard-pitr-{kind}.service" for kind in BACKUP_KINDS] + ([f"{MIRROR_UNIT}.service"] if mirrored else [])


def repository_settings(data: Any, cipher: str) -> list[str]:
    """Where the repository is, its encryption and its retention: on the host that holds it."""
    return [
        f"repo1-path={data.pitr_repository}",
        "repo1-cipher-type=aes-256-cbc",
        f"repo1-cipher-pass={cipher}",
        "repo1-retention-full-type=time",
        f"repo1-retention-full={data.pitr_retention_days}",
    ]


def common_settings() -> list[str]:
    return ["compress-type=zst", "start-fast=y", f"lock-path={SPOOL}", "log-level-console=info",
            "log-level-file=off"]


def tls_server_settings(address: str, clients: list[str]) -> list[str]:
    """pgBackRest's TLS server on the private address: a client proves itself with a certificate of the internal
    CA, and only the hosts named (by their certificates' common name) may work on the stanza."""
    return [
        f"tls-server-address={address}",
        f"tls-server-port={SERVER_PORT}",
        f"tls-server-ca-file={INTERNAL_CA_PATH}",
        f"tls-server-cert-file={internal_certificate_path(TLS_SERVICE)}",
        f"tls-server-key-file={internal_key_path(TLS_SERVICE)}",
        *(f"tls-server-auth={client}={STANZA}" for client in clients),
    ]


def tls_client_settings(option: str, name: str) -> list[str]:
    """A connection to another host's TLS server: option is `repo1` (the repository host) or `pgN` (a member)."""
    return [
        f"{option}-host={name}",
        f"{option}-host-type=tls",
        f"{option}-host-port={SERVER_PORT}",
        f"{option}-host-ca-file={INTERNAL_CA_PATH}",
        f"{option}-host-cert-file={internal_certificate_path(TLS_SERVICE)}",
        f"{option}-host-key-file={internal_key_path(TLS_SERVICE)}",
    ]


def config_text(role: str, global_settings: list[str], stanza_settings: list[str]) -> str:
    """/etc/pgbackrest/pgbackrest.conf, which pgBackRest reads before Debian's /etc/pgbackrest.conf."""
    return "\n".join([f"# Managed by postyard (roles/{role}.py).", "[global]", *global_settings, "",
                      f"[{STANZA}]", *stanza_settings, ""])


def pgbackrest_config(data: Any, cipher: str) -> str:
    """The configuration of a db host that holds its own repository."""
    return config_text("pgbackrest", [*repository_settings(data, cipher), *common_settings()],
                       [f"pg1-path={DATA_DIR}", f"pg1-socket-path={SOCKET_DIR}"])


def archiving_context(data: Any) -> dict[str, Any]:
    return {"archive_command": ARCHIVE_COMMAND, "archive_timeout": data.pitr_archive_timeout}


def unit_context(data: Any, kind: str, remote: bool = False) -> dict[str, Any]:
    """The context of a backup kind's service and timer; `remote`: taken by a repository host, through the
    members' TLS servers."""
    return {"kind": kind, "stanza": STANZA, "schedule": getattr(data, f"pitr_{kind}_schedule"),
            "read_write_paths": f"{data.pitr_repository} {SPOOL}",
            "address_families": "AF_UNIX AF_INET AF_INET6" if remote else "AF_UNIX"}


def mirror_context(data: Any) -> dict[str, Any]:
    return {"repository": data.pitr_repository, "destination": f"{data.backup_remote}/pgbackrest",
            "rsh": remote_shell(data), "schedule": data.pitr_mirror_schedule}


def has_stanza(repository: str) -> bool:
    """Whether the repository holds the stanza (made by its first stanza-create)."""
    check = f"test -e {repository}/backup/{STANZA}/backup.info && echo yes || echo no"
    return host.get_fact(Command, command=check).strip() == "yes"


def make_repository(repository: str) -> None:
    files.directory(name=f"Create {repository}", path=repository, user="postgres", group="postgres", mode="750")


def make_config_directory() -> None:
    files.directory(name="Create /etc/pgbackrest", path="/etc/pgbackrest", user="postgres", group="postgres",
                    mode="750")


def upload_config(text: str) -> OperationMeta:
    return files.put(name=f"Upload {CONFIG}", src=StringIO(text), dest=CONFIG, user="postgres", group="postgres",
                     mode="600")


def install_backup_timers(data: Any, remote: bool = False) -> None:
    for kind in BACKUP_KINDS:
        service = files.template(
            name=f"Install postyard-pitr-{kind}.service", src="templates/pgbackrest/backup.service.j2",
            dest=f"{UNIT_DIR}/postyard-pitr-{kind}.service", mode="644", create_remote_dir=False,
            jinja_env_kwargs=jinja_options(), **unit_context(data, kind, remote),
        )
        install_unit(f"postyard-pitr-{kind}.timer", "templates/pgbackrest/backup.timer.j2", restart_on=(service,),
                     label=f"the {kind} backup timer", **unit_context(data, kind, remote))


def create_stanza_once(repository: str) -> None:
    """The stanza, checked (a WAL segment reaches the repository), and the first full backup, where the
    repository holds none yet: on a db host that holds its own repository."""
    if not has_stanza(repository):
        server.shell(name="Create the repository", _su_user="postgres",
                     commands=[f"pgbackrest --stanza={STANZA} stanza-create", f"pgbackrest --stanza={STANZA} check"])
        # through its unit, so the host report shows how it went
        server.shell(name="Take the first full backup", commands=["systemctl start postyard-pitr-full.service"])


def install_server(config: OperationMeta, tls: list[OperationMeta], purpose: str, read_write_paths: str) -> None:
    """pgBackRest's TLS server as a unit of its own, restarted when its configuration or certificate changes."""
    install_unit(f"{SERVER_UNIT}.service", "templates/pgbackrest/server.service.j2", restart_on=(config, *tls),
                 label="pgBackRest's TLS server", **server_context(purpose, read_write_paths))


def server_context(purpose: str, read_write_paths: str) -> dict[str, str]:
    return {"purpose": purpose, "read_write_paths": read_write_paths}


def install_tls() -> list[OperationMeta]:
    """This host's certificate of the internal CA, for pgBackRest's TLS server and its connections to others."""
    return install_internal_tls(TLS_SERVICE, owner="postgres")


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
    # systemd keeps a failed unit listed after its file is gone: the host report would show it failed for good
    failed = f"systemctl is-failed --quiet {MIRROR_UNIT}.service && echo yes || echo no"
    if host.get_fact(Command, command=failed).strip() == "yes":
        server.shell(name="Forget the removed mirror's last failure",
                     commands=[f"systemctl reset-failed {MIRROR_UNIT}.service"])


@deploy("Point-in-time recovery", data_defaults={**DEFAULTS, "backup_remote": BACKUP_DEFAULTS["backup_remote"],
                                                 "backup_remote_port": BACKUP_DEFAULTS["backup_remote_port"]})
def deploy_pgbackrest() -> None:
    repository = host.data.pitr_repository
    make_repository(repository)
    make_config_directory()
    upload_config(pgbackrest_config(host.data, secret(CIPHER_SECRET)))
    archiving = files.template(
        name=f"Upload {ARCHIVE_SETTINGS}", src="templates/pgbackrest/archiving.conf.j2", dest=ARCHIVE_SETTINGS,
        user="postgres", group="postgres", mode="644", jinja_env_kwargs=jinja_options(),
        **archiving_context(host.data),
    )
    # archive_mode takes a restart; it happens once, when archiving is first turned on.
    systemd.service(name="Restart PostgreSQL to archive WAL", service=POSTGRESQL_UNIT, restarted=True,
                    _if=archiving.did_change)
    install_backup_timers(host.data)
    if host.data.backup_remote:
        _mirror_off_the_host()
    else:
        _no_mirror()
    create_stanza_once(repository)
