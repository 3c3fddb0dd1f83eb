"""The data tier across the private network of the split testbed, with real clients.

Clients run in a host's own network namespace, so the servers see that host's private address.
"""

from __future__ import annotations

import os
import subprocess

import pytest

from app import tls_policy


@pytest.fixture(scope="session")
def netns(split_testbed):
    return {record.name: record.netns for record in split_testbed.hosts}


def run_in(netns: str, argv: list[str], env: dict[str, str], timeout: float = 20) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            ["ip", "netns", "exec", netns, *argv], env={**os.environ, **env},
            capture_output=True, text=True, timeout=timeout, check=False,
        )
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(argv, 124, "", "timed out")


def psql(netns, db, ca: str, user: str, password: str, sslmode: str = "verify-full"):
    dsn = (f"host={db.private_address} port=5432 dbname=postyard user={user} "
           f"sslmode={sslmode} sslrootcert={ca} connect_timeout=5")
    query = "SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
    return run_in(netns, ["psql", dsn, "-XAtc", query], {"PGPASSWORD": password})


def redis(netns, cache, ca: str, user: str | None, password: str, *command: str, tls: bool = True):
    argv = ["redis-cli", "-h", cache.private_address, "-p", "6379", "--no-auth-warning"]
    if tls:
        argv += ["--tls", "--cacert", ca]
    if user:
        argv += ["--user", user]
    return run_in(netns, [*argv, *command], {"REDISCLI_AUTH": password} if user else {})


@pytest.fixture(scope="session")
def db(split_hosts):
    return split_hosts["db1"]


@pytest.fixture(scope="session")
def cache(split_hosts):
    return split_hosts["cache1"]


@pytest.fixture(scope="session")
def ca(db) -> str:
    return str(db.secrets().path("internal-ca.crt"))


def test_api_host_reaches_postgresql_over_tls_with_scram(netns, db, ca):
    result = psql(netns["api1"], db, ca, "postyard_app", db.secrets().get("postgresql-postyard_app"))
    assert result.returncode == 0, result.stderr
    ssl, version = result.stdout.strip().split("|")
    assert ssl == "t" and version in tls_policy.PROTOCOLS


def test_postgresql_refuses_a_connection_without_tls(netns, db, ca):
    result = psql(netns["api1"], db, ca, "postyard_app", db.secrets().get("postgresql-postyard_app"), "disable")
    assert result.returncode != 0
    assert "no encryption" in result.stderr


def test_postgresql_refuses_a_wrong_password(netns, db, ca):
    result = psql(netns["api1"], db, ca, "postyard_app", "not-the-password")
    assert result.returncode != 0
    assert "password authentication failed" in result.stderr


def test_mail_host_may_not_use_the_api_role(netns, db, ca):
    result = psql(netns["mail1"], db, ca, "postyard_app", db.secrets().get("postgresql-postyard_app"))
    assert result.returncode != 0
    assert "pg_hba.conf rejects connection" in result.stderr


def test_mail_host_reaches_postgresql_with_its_own_role(netns, db, ca):
    result = psql(netns["mail1"], db, ca, "postyard_mail", db.secrets().get("postgresql-postyard_mail"))
    assert result.returncode == 0, result.stderr


def test_the_cache_host_reaches_postgresql_only_as_its_status_reporter(netns, db, ca):
    app = psql(netns["cache1"], db, ca, "postyard_app", db.secrets().get("postgresql-postyard_app"))
    reporter = psql(netns["cache1"], db, ca, "postyard_reporter", db.secrets().get("postgresql-postyard_reporter"))
    assert app.returncode != 0 and "pg_hba.conf rejects connection" in app.stderr
    assert reporter.returncode == 0, reporter.stderr


def test_the_reporter_role_reads_no_table(netns, db, ca):
    dsn = (f"host={db.private_address} port=5432 dbname=postyard user=postyard_reporter "
           f"sslmode=verify-full sslrootcert={ca} connect_timeout=5")
    password = db.secrets().get("postgresql-postyard_reporter")
    for table in ("emails", "users", "api_keys", "host_reports"):
        result = run_in(netns["cache1"], ["psql", dsn, "-XAtc", f"SELECT count(*) FROM {table}"],
                        {"PGPASSWORD": password})
        assert result.returncode != 0 and "permission denied" in result.stderr, (table, result.stderr)


def test_redis_answers_the_app_user_over_tls(netns, cache, ca):
    result = redis(netns["api1"], cache, ca, "postyard", cache.secrets().get("redis-app"), "PING")
    assert result.stdout.strip() == "PONG", result.stderr


def test_redis_refuses_unauthenticated_commands(netns, cache, ca):
    result = redis(netns["api1"], cache, ca, None, "", "PING")
    assert "NOAUTH" in result.stdout + result.stderr


def test_redis_refuses_flushall_from_the_app_user(netns, cache, ca):
    result = redis(netns["api1"], cache, ca, "postyard", cache.secrets().get("redis-app"), "FLUSHALL")
    assert "NOPERM" in result.stdout + result.stderr


def test_redis_speaks_no_plaintext_across_hosts(netns, cache, ca):
    result = redis(netns["api1"], cache, ca, "postyard", cache.secrets().get("redis-app"), "PING", tls=False)
    assert result.stdout.strip() != "PONG"


def test_redis_port_is_closed_to_hosts_that_are_not_its_clients(netns, cache, ca):
    result = redis(netns["mail1"], cache, ca, "postyard", cache.secrets().get("redis-app"), "PING")
    assert result.stdout.strip() != "PONG"
