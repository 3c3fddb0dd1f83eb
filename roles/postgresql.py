"""PostgreSQL role: Debian's PostgreSQL 15 with TLS, scram-sha-256, and a pg_hba.conf owned whole."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.facts.server import Command
from pyinfra.operations import files, postgres, server, systemd
from pyinfra.operations.util import any_changed

from app import tls_policy
from app.db import roles as db_roles
from postyard.topology import SCHEMA_GROUP, host_groups
from roles.support.inventory_secrets import (
    install_internal_tls,
    internal_certificate_path,
    internal_key_path,
    record_applied_secrets,
    secret,
)
from roles.support.peers import first_address_in_environment, peers_by_group
from roles.support.postgres_roles import login_roles
from roles.support.staging import jinja_options
from roles.support.systemd_units import UNIT_DIR, enabled_and_running, reload_units

__all__ = [
    "DEFAULTS", "DATABASE_ROLES", "HbaRule", "hba_lines", "hba_rules", "host_memory_mb", "memory_settings",
    "packages", "platform_hba_rules", "server_settings", "deploy_postgresql",
]

DEFAULTS: dict[str, Any] = {
    # The platform's database, owned by the API's role.
    "postgresql_database": "postyard",
    # Memory to size PostgreSQL for, in MiB; unset: all of the host's RAM on a db-only host,
    # half of it where the host runs other groups too.
    "postgresql_memory_mb": None,
    "postgresql_max_connections": 100,
}

VERSION = "15"
CONFIG_DIR = f"/etc/postgresql/{VERSION}/main"
DATA_DIR = f"/var/lib/postgresql/{VERSION}/main"
UNIT = f"postgresql@{VERSION}-main.service"
BIN_DIR = f"/usr/lib/postgresql/{VERSION}/bin"
# On a clustered database: the role the replicas stream from the primary as, and the one pg_rewind connects as.
REPLICATION_USER = "replicator"
REWIND_USER = "rewind"
PSQL = {"_su_user": "postgres"}
# Starts a postmaster that died again (templates/postgresql/postyard-restart.conf).
RESTART_DROP_IN = f"{UNIT_DIR}/{UNIT}.d/postyard-restart.conf"


# In hba_rules' peers: the schema host's address (postyard/topology.py SCHEMA_GROUP).
SCHEMA_PEER = "schema"


@dataclass(frozen=True)
class DatabaseRole:
    name: str
    client_groups: tuple[str, ...]
    purpose: str


DATABASE_ROLES: tuple[DatabaseRole, ...] = (
    # Owns the database; only the schema host (migrations, operators' commands) may log in as it.
    DatabaseRole(db_roles.OWNER, (SCHEMA_PEER,), "schema owner: migrations, operators' commands, data key rotation"),
    DatabaseRole(db_roles.APP, ("api",), "the API, bound by row-level security"),
    DatabaseRole(db_roles.MAIL, ("mail",), "Postfix and the DKIM sync: read-only views"),
    DatabaseRole(db_roles.DOVECOT, ("mail",), "Dovecot's passdb: read-only credentials view"),
    DatabaseRole(db_roles.WORKER, ("mail",), "the outbox worker and its housekeeping"),
    DatabaseRole(db_roles.LOG_FOLLOWER, ("mail",), "Postfix's log becomes events"),
    DatabaseRole(db_roles.BOUNCE, ("mail",), "bounces and complaints piped from Postfix"),
    DatabaseRole(db_roles.INTAKE, ("mail",), "mail submitted over SMTP becomes emails"),
    DatabaseRole(db_roles.WEBHOOKS, ("mail",), "the webhook dispatcher"),
    # The other db hosts report too when the database is clustered, through the primary.
    DatabaseRole(db_roles.REPORTER, ("cache", "mail", "api", "db"), "every host's status report: one function only"),
)


@dataclass(frozen=True)
class HbaRule:
    database: str
    role: str
    address: str


def packages(data: Any) -> tuple[str, ...]:
    """The Debian packages this role needs; the packages role installs them with every other role's."""
    return ("postgresql",)


def platform_hba_rules(database: str, db_members: Iterable[str] = ()) -> list[HbaRule]:
    """This host's hba_rules, from its environment's hosts; db_members: every db host of a clustered database,
    this one included (its own HAProxy connects from its private address)."""
    peers = {**peers_by_group(), SCHEMA_PEER: first_address_in_environment(SCHEMA_GROUP)}
    if db_members:
        peers["db"] = list(db_members)
    return hba_rules(database, peers)


def hba_rules(database: str, peers: Mapping[str, Iterable[str]]) -> list[HbaRule]:
    """hostssl rules: every platform role from loopback, and from its client groups' addresses."""
    rules = []
    for role in DATABASE_ROLES:
        addresses = ["127.0.0.1/32", "::1/128"]
        addresses += sorted({f"{a}/32" for g in role.client_groups for a in peers.get(g, ())})
        rules += [HbaRule(database, role.name, address) for address in addresses]
    return rules


def hba_lines(rules: list[HbaRule], replication_peers: Iterable[str] = ()) -> list[str]:
    """pg_hba.conf, first match wins: the postgres superuser over the local socket, each rule over TLS, and on a
    clustered database the other members' replication and pg_rewind; anything else rejected."""
    lines = ["local all postgres peer"]
    lines += [f"hostssl {rule.database} {rule.role} {rule.address} scram-sha-256" for rule in rules]
    # Patroni reads a replica's own timeline over a replication connection to itself.
    for address in sorted({*replication_peers, "127.0.0.1"} if replication_peers else ()):
        lines += [f"hostssl replication {REPLICATION_USER} {address}/32 scram-sha-256",
                  f"hostssl postgres {REWIND_USER} {address}/32 scram-sha-256"]
    return lines + ["local all all reject", "host all all 0.0.0.0/0 reject", "host all all ::/0 reject"]


def server_settings(max_connections: int, memory: Mapping[str, str]) -> dict[str, str | int]:
    """The server's settings besides where it listens: one host's, or each Patroni member's."""
    return {
        "max_connections": max_connections,
        "ssl": "on",
        "ssl_cert_file": internal_certificate_path("postgresql"),
        "ssl_key_file": internal_key_path("postgresql"),
        "ssl_min_protocol_version": tls_policy.POSTGRESQL["min_protocol"],
        "ssl_ciphers": tls_policy.POSTGRESQL["tls12_ciphers"],
        "ssl_prefer_server_ciphers": "on",
        "password_encryption": "scram-sha-256",
        **memory,
        "log_connections": "on",
        "log_disconnections": "off",
        "log_line_prefix": "%m [%p] %q%u@%d from %h ",
    }


def memory_settings(memory_mb: int, max_connections: int) -> dict[str, str]:
    """The usual starting points: a quarter of RAM for buffers, three quarters as OS cache."""
    return {
        "shared_buffers": f"{max(128, memory_mb // 4)}MB",
        "effective_cache_size": f"{max(256, memory_mb * 3 // 4)}MB",
        "maintenance_work_mem": f"{min(1024, max(64, memory_mb // 16))}MB",
        "work_mem": f"{max(4, memory_mb // (4 * max_connections))}MB",
    }


def host_memory_mb() -> int:
    if host.data.postgresql_memory_mb:
        return int(host.data.postgresql_memory_mb)
    total_kb = int(host.get_fact(Command, command="awk '/^MemTotal:/ {print $2}' /proc/meminfo"))
    share = 1 if set(host_groups(host.groups)) == {"db"} else 2
    return total_kb // 1024 // share


@deploy("PostgreSQL", data_defaults=DEFAULTS)
def deploy_postgresql() -> None:
    tls = install_internal_tls("postgresql", owner="postgres")

    listen = ["127.0.0.1", "::1"] + ([host.data.private_address] if host.data.get("private_address") else [])
    max_connections = host.data.postgresql_max_connections
    settings = files.template(
        name=f"Upload {CONFIG_DIR}/conf.d/postyard.conf",
        src="templates/postgresql/postyard.conf.j2", dest=f"{CONFIG_DIR}/conf.d/postyard.conf",
        user="postgres", group="postgres", mode="644", jinja_env_kwargs=jinja_options(),
        listen_addresses=listen,
        settings=server_settings(max_connections, memory_settings(host_memory_mb(), max_connections)),
    )
    hba = files.template(
        name=f"Upload {CONFIG_DIR}/pg_hba.conf",
        src="templates/postgresql/pg_hba.conf.j2", dest=f"{CONFIG_DIR}/pg_hba.conf",
        user="postgres", group="postgres", mode="640", jinja_env_kwargs=jinja_options(),
        lines=hba_lines(platform_hba_rules(host.data.postgresql_database)),
    )
    server.shell(
        name="Check PostgreSQL's configuration files",
        commands=[
            # settings that wait for the restart below report "could not be applied": not an error
            "test \"$(psql -Atc \"SELECT count(*) FROM pg_file_settings WHERE error IS NOT NULL"
            " AND error <> 'setting could not be applied'\")\" = 0",
            "test \"$(psql -Atc 'SELECT count(*) FROM pg_hba_file_rules WHERE error IS NOT NULL')\" = 0",
        ],
        _if=any_changed(settings, hba), **PSQL,
    )
    systemd.service(name="Restart PostgreSQL", service=UNIT, restarted=True, _if=settings.did_change)
    systemd.service(
        name="Reload PostgreSQL", service=UNIT, reloaded=True,
        _if=lambda: (hba.did_change() or any(op.did_change() for op in tls)) and not settings.did_change(),
    )
    restart_drop_in = files.put(name=f"Install {RESTART_DROP_IN}", src="templates/postgresql/postyard-restart.conf",
                                dest=RESTART_DROP_IN, mode="644")
    reload_units(restart_drop_in)
    enabled_and_running(name="Enable PostgreSQL", service=UNIT)

    passwords = {role.name: secret(f"postgresql-{role.name}") for role in DATABASE_ROLES}
    applied = record_applied_secrets({f"postgresql-{name}": password for name, password in passwords.items()})
    created = login_roles(name="Create the login roles", roles=[role.name for role in DATABASE_ROLES], **PSQL)
    for role in DATABASE_ROLES:
        postgres.role(
            name=f"Set the password of {role.name}", role=role.name, login=True, password=passwords[role.name],
            _if=any_changed(created, applied[f"postgresql-{role.name}"]), **PSQL,
        )

    database = host.data.postgresql_database
    created = postgres.database(
        name=f"Create database {database}", database=database, owner=db_roles.OWNER, **PSQL
    )
    grants = "; ".join(
        [f'REVOKE ALL ON DATABASE "{database}" FROM PUBLIC']
        + [f'GRANT CONNECT ON DATABASE "{database}" TO "{role.name}"' for role in DATABASE_ROLES]
    )
    postgres.sql(name=f"Restrict who may connect to {database}", sql=grants, _if=created.did_change, **PSQL)
