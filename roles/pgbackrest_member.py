"""Point-in-time recovery where the database is clustered: each member pushes its WAL to the repository host
(roles/pgbackrest_repository.py) and restores from it, and runs pgBackRest's TLS server, through which the
repository host takes its backups from the primary. Both ends prove themselves with certificates of the internal
CA, and each server takes only the other side's hosts.

Patroni runs PostgreSQL here: the archive settings join its own (roles/patroni.py).
"""

from __future__ import annotations

from typing import Any

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.api.exceptions import DeployError

from postyard.topology import PITR_REPOSITORY_GROUP
from roles.pgbackrest import (
    ARCHIVE_COMMAND,
    DEFAULTS,
    SOCKET_DIR,
    SPOOL,
    common_settings,
    config_text,
    install_server,
    install_tls,
    make_config_directory,
    tls_client_settings,
    tls_server_settings,
    upload_config,
)
from roles.postgresql import DATA_DIR
from roles.support.peers import environment_members

__all__ = ["archive_parameters", "deploy_pgbackrest_member", "member_config", "packages",
           "repository_host"]



def packages(data: Any) -> tuple[str, ...]:
    return ("pgbackrest",)


def archive_parameters(data: Any) -> dict[str, str | int]:
    """PostgreSQL's archive settings, for Patroni's configuration: only the primary archives."""
    return {"archive_mode": "on", "archive_command": ARCHIVE_COMMAND, "archive_timeout": data.pitr_archive_timeout}


def repository_host() -> tuple[str, str]:
    """(name, private address) of the environment's repository host."""
    found = environment_members(PITR_REPOSITORY_GROUP)
    if not found:
        raise DeployError(f"a clustered database keeps its pgBackRest repository on a {PITR_REPOSITORY_GROUP} host; "
                          f"this environment has none")
    return found[0]


def member_config(address: str, repository: tuple[str, str]) -> str:
    """The member's settings: the repository host by name (pgBackRest checks its certificate against a name, never
    an address: /etc/hosts maps it to the private address, roles/base.py), and its own server for that host."""
    name, _ = repository
    return config_text("pgbackrest_member",
                       [*tls_client_settings("repo1", name), *common_settings(),
                        *tls_server_settings(address, [name])],
                       [f"pg1-path={DATA_DIR}", f"pg1-socket-path={SOCKET_DIR}"])


@deploy("Point-in-time recovery (a member of the clustered database)", data_defaults=DEFAULTS)
def deploy_pgbackrest_member() -> None:
    make_config_directory()
    tls = install_tls()
    config = upload_config(member_config(host.data.private_address, repository_host()))
    install_server(config, tls, "the repository host's backups of this member", SPOOL)
