"""The pgBackRest repository of a clustered database, on a host of its own (roles/pgbackrest_member.py's
REPOSITORY_GROUP): encrypted as a single db host's is, kept as long, on the same schedule. Its TLS server takes
the members' WAL; its backups reach the primary, whichever member that is, through the members' TLS servers.
"""

from __future__ import annotations

from typing import Any

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.api.exceptions import DeployError
from pyinfra.operations import files, server

from postyard.topology import PITR_REPOSITORY_GROUP
from roles.pgbackrest import (
    CIPHER_SECRET,
    DEFAULTS,
    SERVER_UNIT,
    SOCKET_DIR,
    SPOOL,
    STANZA,
    common_settings,
    config_text,
    has_stanza,
    install_backup_timers,
    install_server,
    install_tls,
    make_config_directory,
    make_repository,
    repository_settings,
    tls_client_settings,
    tls_server_settings,
    upload_config,
)
from roles.postgresql import DATA_DIR
from roles.support.inventory_secrets import secret
from roles.support.peers import environment_members, first_in_environment
from roles.support.staging import jinja_options
from roles.support.systemd_units import UNIT_DIR, reload_units

__all__ = ["STANZA_UNIT", "deploy_pgbackrest_repository", "packages", "repository_config", "stanza_context"]

# Creates the stanza and takes the first full backup, trying again every RETRY_SECONDS: the deploy reaches this
# host in no set order with the members, whose servers and primary it needs.
STANZA_UNIT = "postyard-pitr-stanza"
RETRY_SECONDS = 10


def packages(data: Any) -> tuple[str, ...]:
    return ("pgbackrest",)


def repository_config(data: Any, cipher: str, address: str, members: list[tuple[str, str]]) -> str:
    """The repository's settings, its TLS server for the members, and each member as pgN, by name (/etc/hosts
    maps it to its private address, roles/base.py)."""
    stanza: list[str] = []
    for number, (name, _) in enumerate(members, start=1):
        stanza += [*tls_client_settings(f"pg{number}", name), f"pg{number}-path={DATA_DIR}",
                   f"pg{number}-socket-path={SOCKET_DIR}"]
    return config_text("pgbackrest_repository",
                       [*repository_settings(data, cipher), *common_settings(),
                        *tls_server_settings(address, [name for name, _ in members])],
                       stanza)


@deploy("Point-in-time recovery (the clustered database's repository)", data_defaults=DEFAULTS)
def deploy_pgbackrest_repository() -> None:
    if not first_in_environment((PITR_REPOSITORY_GROUP,)):
        raise DeployError(f"the members archive to the first {PITR_REPOSITORY_GROUP} host, by name; {host.name} is "
                          f"another: a clustered database's environment has one {PITR_REPOSITORY_GROUP} host")
    repository = host.data.pitr_repository
    make_repository(repository)
    make_config_directory()
    tls = install_tls()
    config = upload_config(repository_config(host.data, secret(CIPHER_SECRET), host.data.private_address,
                                             environment_members("db")))
    install_server(config, tls, "the members' WAL and restores", f"{repository} {SPOOL}")
    install_backup_timers(host.data, remote=True)
    stanza = files.template(
        name=f"Install {STANZA_UNIT}.service", src="templates/pgbackrest/stanza.service.j2",
        dest=f"{UNIT_DIR}/{STANZA_UNIT}.service", mode="644", create_remote_dir=False,
        jinja_env_kwargs=jinja_options(), **stanza_context(repository))
    reload_units(stanza)
    if not has_stanza(repository):
        server.shell(name="Create the stanza and take the first full backup, once the members answer",
                     commands=[f"systemctl start --no-block {STANZA_UNIT}.service"])


def stanza_context(repository: str) -> dict[str, Any]:
    return {"stanza": STANZA, "server_unit": SERVER_UNIT, "retry_seconds": RETRY_SECONDS,
            "read_write_paths": f"{repository} {SPOOL}"}
