"""PostgreSQL's policy, read back from the running server on each db host."""

from __future__ import annotations

import pytest

from app import tls_policy
from roles.postgresql import DATABASE_ROLES

SERVER_SETTINGS = {
    "ssl": "on",
    "ssl_min_protocol_version": tls_policy.MIN_PROTOCOL,
    "password_encryption": "scram-sha-256",
}


def sql(db, query: str) -> str:
    return db.check_output("runuser -u postgres -- psql -XAtc %s", query)


def test_postgresql_is_running_and_enabled(db, db_host):
    """Debian's unit runs it, or Patroni where the database is clustered (and Debian's unit then does not)."""
    clustered = "patroni" in db_host.roles
    service = db.service("patroni" if clustered else "postgresql@15-main")
    assert service.is_running
    assert service.is_enabled
    if clustered:
        assert not db.service("postgresql@15-main").is_enabled


@pytest.mark.parametrize("name, expected", sorted(SERVER_SETTINGS.items()))
def test_server_setting(db, name, expected):
    assert sql(db, f"SHOW {name}") == expected


def test_pg_hba_allows_only_peer_for_postgres_scram_over_tls_and_reject(db):
    rules = sql(db, "SELECT type, user_name, auth_method FROM pg_hba_file_rules").splitlines()
    methods = {rule.split("|")[2] for rule in rules}
    assert methods <= {"peer", "scram-sha-256", "reject"}
    assert all(rule.startswith("hostssl|") for rule in rules if rule.endswith("|scram-sha-256"))
    assert all(rule == "local|{postgres}|peer" for rule in rules if rule.endswith("|peer"))
    assert rules[-1].endswith("|reject")


def test_listens_only_on_loopback_and_the_private_address(db, db_host):
    listening = {
        socket.split("://", 1)[1].rsplit(":", 1)[0]
        for socket in db.check_output("ss -Htln 'sport = :5432' | awk '{print \"tcp://\" $4}'").split()
    }
    allowed = {"127.0.0.1", "[::1]", db_host.private_address}
    assert listening and listening <= allowed


@pytest.mark.parametrize("role", [role.name for role in DATABASE_ROLES])
def test_platform_role_has_a_scram_verifier(db, role):
    assert sql(db, f"SELECT rolpassword LIKE 'SCRAM-SHA-256$%' FROM pg_authid WHERE rolname = '{role}'") == "t"


def test_public_may_not_connect_to_the_platform_database(db):
    acl = sql(db, "SELECT datacl FROM pg_database WHERE datname = 'postyard'")
    entries = acl.strip("{}").split(",")
    assert not any(entry.startswith("=") for entry in entries)
