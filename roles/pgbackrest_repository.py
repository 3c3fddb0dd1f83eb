"""The pgBackRest repository of a clustered database, on a host of its own (roles/pgbackrest_member.py's
REPOSITORY_GROUP): encrypted as a single db host's is, kept as long, on the same schedule. Its TLS server takes
the members' WAL; its backups reach the primary, whichever member that is, through the members' TLS servers.
"""

from __future__ import annotations

from typing import Any

from pyinfra import host
from pyinfra.api import deploy

from roles.pgbackrest import (
    CIPHER_SECRET,
    DEFAULTS,
    SOCKET_DIR,
    SPOOL,
    common_settings,
    config_text,
    create_stanza_once,
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
from roles.support.peers import environment_members

__all__ = ["deploy_pgbackrest_repository", "packages", "repository_config"]


def packages(data: Any) -> tuple[str, ...]:
    return ("pgbackrest",)


def repository_config(data: Any, cipher: str, address: str, members: list[tuple[str, str]]) -> str:
    """The repository's settings, its TLS server for the members, and each member as pgN."""
    stanza: list[str] = []
    for number, (_, member_address) in enumerate(members, start=1):
        stanza += [*tls_client_settings(f"pg{number}", member_address), f"pg{number}-path={DATA_DIR}",
                   f"pg{number}-socket-path={SOCKET_DIR}"]
    return config_text("pgbackrest_repository",
                       [*repository_settings(data, cipher), *common_settings(),
                        *tls_server_settings(address, [name for name, _ in members])],
                       stanza)


@deploy("Point-in-time recovery (the clustered database's repository)", data_defaults=DEFAULTS)
def deploy_pgbackrest_repository() -> None:
    repository = host.data.pitr_repository
    make_repository(repository)
    make_config_directory()
    tls = install_tls()
    config = upload_config(repository_config(host.data, secret(CIPHER_SECRET), host.data.private_address,
                                             environment_members("db")))
    install_server(config, tls, "the members' WAL and restores", f"{repository} {SPOOL}")
    install_backup_timers(host.data, remote=True)
    create_stanza_once(repository)
