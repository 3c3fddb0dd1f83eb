"""Patroni role: on a clustered database, each db host's PostgreSQL 15 run by Debian's Patroni, the leader lock
kept in etcd (roles/etcd.py). Replicas stream from the primary synchronously, so a commit the primary
acknowledged is on a second host before any client hears of it, and Patroni promotes only that replica.

The settings, pg_hba.conf and TLS are the postgresql role's; the roles and the database are created on the
primary, and reach the replicas by replication.
"""

from __future__ import annotations

import hashlib
import hmac
import shlex
from io import StringIO
from typing import Any

import yaml
from pyinfra import host
from pyinfra.api import deploy
from pyinfra.api.exceptions import DeployError
from pyinfra.facts.server import Command
from pyinfra.operations import files, server
from pyinfra.operations.util import any_changed

from app.db import roles as db_roles
from roles import pgbackrest, postgresql
from roles.etcd import client_endpoints
from roles.pgbackrest_member import archive_parameters
from roles.support.database_client import POSTGRESQL_PORT
from roles.support.inventory_secrets import (
    INTERNAL_CA_PATH,
    install_internal_tls,
    internal_certificate_path,
    internal_key_path,
    secret,
)
from roles.support.peers import environment_members
from roles.support.scram import scram_verifier
from roles.support.stamps import run_with_file_once_for
from roles.support.systemd_units import enabled_and_running

__all__ = ["DEFAULTS", "MIN_MEMBERS", "REST_PORT", "SCOPE", "TIMINGS", "after_install", "deploy_patroni", "packages",
           "patroni_config", "setup_command", "setup_sql", "verifiers"]

DEFAULTS: dict[str, Any] = {**postgresql.DEFAULTS, **pgbackrest.DEFAULTS}
SCOPE = "postyard"
CONFIG = "/etc/patroni/config.yml"
REST_PORT = 8008
SETUP_SQL = "/etc/postyard/postgresql-setup.sql"
SETUP_STAMP = "/etc/postyard/postgresql-setup.applied"
SALT_SECRET = "postgresql-scram-salt"
# Seconds the deploy waits for the setup to reach this member (the first member initialises the cluster, the
# others copy it, then the primary runs the setup).
SETUP_WITHIN = 300
# etcd keeps a quorum through the loss of one member only from three up.
MIN_MEMBERS = 3
# The leader lock lives `ttl` seconds; a lost primary is replaced about ttl + loop_wait after it last renewed it.
TIMINGS = {"ttl": 20, "loop_wait": 5, "retry_timeout": 5}
# Cluster-wide settings: Patroni keeps them in etcd, the same on every member.
CLUSTER_SETTINGS = ("max_connections",)


def packages(data: Any) -> tuple[str, ...]:
    """The Debian packages this role needs; the packages role installs them with every other role's."""
    return ("postgresql", "patroni", "curl")


def patroni_config(name: str, address: str, members: list[tuple[str, str]], settings: dict[str, str | int],
                   hba: list[str], passwords: dict[str, str]) -> dict[str, Any]:
    """Patroni's configuration for one member."""
    certificate, key = internal_certificate_path("postgresql"), internal_key_path("postgresql")
    local = {k: v for k, v in settings.items() if k not in CLUSTER_SETTINGS}
    return {
        "scope": SCOPE,
        "name": name,
        "restapi": {
            "listen": f"{address}:{REST_PORT}", "connect_address": f"{address}:{REST_PORT}",
            "certfile": certificate, "keyfile": key,
            "authentication": {"username": "patroni", "password": passwords["rest"]},
        },
        # patronictl's calls to the members' REST API (a switchover, a restart) verify it against the internal CA.
        "ctl": {"cacert": INTERNAL_CA_PATH},
        "etcd3": {"hosts": client_endpoints(members), "protocol": "https", "cacert": INTERNAL_CA_PATH,
                  "cert": certificate, "key": key},
        "bootstrap": {
            "dcs": {
                **TIMINGS,
                "maximum_lag_on_failover": 1048576,
                "synchronous_mode": True,
                "postgresql": {
                    "use_pg_rewind": True, "use_slots": True,
                    "parameters": {**{k: settings[k] for k in CLUSTER_SETTINGS}, "wal_level": "replica",
                                   "hot_standby": "on", "wal_log_hints": "on", "max_wal_senders": 10,
                                   "max_replication_slots": 10},
                },
            },
            "initdb": [{"encoding": "UTF8"}, {"locale": "C.UTF-8"}, "data-checksums"],
        },
        "postgresql": {
            "listen": f"127.0.0.1,{address}:{POSTGRESQL_PORT}", "connect_address": f"{address}:{POSTGRESQL_PORT}",
            "data_dir": postgresql.DATA_DIR, "bin_dir": postgresql.BIN_DIR,
            "pgpass": "/var/lib/postgresql/.pgpass.patroni",
            # its own connections over the local socket, as the postgres user (peer)
            "use_unix_socket": True,
            "authentication": {
                "superuser": {"username": "postgres", "password": passwords["superuser"]},
                "replication": {"username": postgresql.REPLICATION_USER, "password": passwords["replication"],
                                "sslmode": "verify-full", "sslrootcert": INTERNAL_CA_PATH},
                "rewind": {"username": postgresql.REWIND_USER, "password": passwords["rewind"],
                           "sslmode": "verify-full", "sslrootcert": INTERNAL_CA_PATH},
            },
            "parameters": {**local, "unix_socket_directories": pgbackrest.SOCKET_DIR},
            "pg_hba": hba,
        },
    }


def _quoted(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def setup_sql(database: str, verifiers: dict[str, str]) -> tuple[str, str]:
    """The platform's login roles with their SCRAM verifiers, the database and who may connect, run on the
    primary; it ends by marking the database with its own digest, which the replicas wait to see."""
    names = ", ".join(_quoted(role.name) for role in postgresql.DATABASE_ROLES)
    lines = [
        f"SELECT format('CREATE ROLE %I LOGIN', name) FROM unnest(ARRAY[{names}]) AS name"
        " WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = name) \\gexec",
    ]
    lines += [f'ALTER ROLE "{role.name}" LOGIN PASSWORD {_quoted(verifiers[role.name])};'
              for role in postgresql.DATABASE_ROLES]
    lines += [
        f"SELECT 'CREATE DATABASE \"{database}\" OWNER \"{db_roles.OWNER}\"'"
        f" WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = {_quoted(database)}) \\gexec",
        f'REVOKE ALL ON DATABASE "{database}" FROM PUBLIC;',
    ]
    lines += [f'GRANT CONNECT ON DATABASE "{database}" TO "{role.name}";' for role in postgresql.DATABASE_ROLES]
    body = "\n".join(lines) + "\n"
    mark = f"postyard setup {hashlib.sha256(body.encode()).hexdigest()[:16]}"
    return body + f'COMMENT ON DATABASE "{database}" IS {_quoted(mark)};\n', mark


def setup_command(database: str, rest: str, sql_path: str, mark: str) -> str:
    """On every member: run the setup whenever this member is the primary, until this member's own copy of the
    database carries the setup's mark (a replica, once the primary's run has reached it)."""
    read_mark = (f"SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = "
                 f"{_quoted(database)}")
    script = f"""
tries=0
until [ "$(runuser -u postgres -- psql -XAtqc {shlex.quote(read_mark)} 2>/dev/null)" = {shlex.quote(mark)} ]; do
    if curl -sf --cacert {INTERNAL_CA_PATH} {rest}/primary >/dev/null; then
        runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 -f {sql_path}
    fi
    tries=$((tries + 1))
    if [ "$tries" -ge {SETUP_WITHIN} ]; then
        echo "the platform's roles and database are not set up after {SETUP_WITHIN} s: is there a primary?" >&2
        exit 1
    fi
    sleep 1
done
"""
    return f"bash -c {shlex.quote(script)}"


def verifiers(roles: list[str]) -> dict[str, str]:
    """Each role's password as a SCRAM verifier, salted with a stored secret: the same on every deploy."""
    salt_key = secret(SALT_SECRET).encode()
    return {role: scram_verifier(secret(f"postgresql-{role}"),
                                 hmac.new(salt_key, role.encode(), "sha256").digest()[:16]) for role in roles}


def after_install(newly_installed: list[str]) -> list[str]:
    """Commands for right after the apt transaction that installed these packages: Debian's package creates and
    starts a cluster, and Patroni creates its own in the same place. Only a cluster that transaction made goes."""
    if "postgresql" in newly_installed:
        return [f"pg_dropcluster --stop {postgresql.VERSION} main"]
    return []


def _has_debian_cluster() -> bool:
    check = f"test -e {postgresql.CONFIG_DIR}/postgresql.conf && echo yes || echo no"
    return host.get_fact(Command, command=check).strip() == "yes"


@deploy("Patroni", data_defaults=DEFAULTS)
def deploy_patroni() -> None:
    members = environment_members("db")
    if len(members) < MIN_MEMBERS:
        raise DeployError(f"a clustered database needs {MIN_MEMBERS} db hosts or more (etcd's quorum); this "
                          f"environment has {len(members)}: a lost one of two would stop both")
    if _has_debian_cluster():
        raise DeployError(f"{host.name} runs a PostgreSQL cluster of its own: turning one database into a clustered "
                          "one is not done by the deploy; dump it, and restore the dump into the new cluster")
    tls = install_internal_tls("postgresql", owner="postgres")
    address = host.data.private_address
    max_connections = host.data.postgresql_max_connections
    settings = {**postgresql.server_settings(
        max_connections, postgresql.memory_settings(postgresql.host_memory_mb(), max_connections)),
        **archive_parameters(host.data)}
    addresses = [peer for _, peer in members]
    hba = postgresql.hba_lines(postgresql.platform_hba_rules(host.data.postgresql_database, addresses), addresses)
    # str(): the YAML writer takes plain strings only
    passwords = {kind: str(secret(f"patroni-{kind}")) for kind in ("superuser", "replication", "rewind", "rest")}
    config = files.put(
        name=f"Upload {CONFIG}", dest=CONFIG, user="postgres", group="postgres", mode="600",
        src=StringIO(yaml.safe_dump(patroni_config(host.data.get("hostname") or host.name, address, members,
                                                   settings, hba, passwords), sort_keys=False)),
    )
    # Patroni applies a changed configuration, and PostgreSQL and the REST API a renewed certificate, on SIGHUP;
    # the first one starts it.
    server.shell(name="Reload Patroni", commands=["systemctl reload-or-restart patroni"],
                 _if=any_changed(config, *tls))
    enabled_and_running(name="Enable Patroni", service="patroni")

    database = host.data.postgresql_database
    sql, mark = setup_sql(database, verifiers([role.name for role in postgresql.DATABASE_ROLES]))
    run_with_file_once_for(
        "Create the platform's roles and database on the primary", sql, SETUP_SQL,
        setup_command(database, f"https://{address}:{REST_PORT}", SETUP_SQL, mark), SETUP_STAMP, owner="postgres",
    )
