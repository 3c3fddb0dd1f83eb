"""The app's migrations on the deployed database: the owner migrates over TLS from an api host,
and each platform role then reaches exactly what it should."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from postyard.deployer import REPO

MIGRATE = "import sys; from app.db.migrate import upgrade; upgrade(sys.argv[1])"
MAIL_VIEWS = ("mail_sender_logins", "mail_dkim_keys", "mail_domain_tls_policy", "mail_bounce_domains")


@pytest.fixture(scope="module")
def db(session_hosts):
    return session_hosts["db1"]


@pytest.fixture(scope="module")
def tls_env(db) -> dict[str, str]:
    return {"PGSSLROOTCERT": str(db.secrets().path("internal-ca.crt")), "PGSSLMODE": "verify-full"}


def in_netns(split_testbed, host: str, argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    netns = next(record.netns for record in split_testbed.hosts if record.name == host)
    return subprocess.run(["ip", "netns", "exec", netns, *argv], cwd=REPO, env={**os.environ, **env},
                          capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture(scope="module")
def migrated(split_testbed, db, tls_env):
    password = db.secrets().get("postgresql-postyard_owner")
    url = f"postgresql+asyncpg://postyard_owner:{password}@{db.private_address}:5432/postyard?ssl=verify-full"
    result = in_netns(split_testbed, "api1", [sys.executable, "-c", MIGRATE, url], tls_env)
    assert result.returncode == 0, result.stderr[-2000:]


def query(split_testbed, db, tls_env, host: str, role: str, sql: str) -> subprocess.CompletedProcess[str]:
    dsn = f"host={db.private_address} dbname=postyard user={role} connect_timeout=5"
    env = {**tls_env, "PGPASSWORD": db.secrets().get(f"postgresql-{role}")}
    return in_netns(split_testbed, host, ["psql", dsn, "-XAtc", sql], env)


@pytest.mark.parametrize("view", MAIL_VIEWS)
def test_the_mail_role_reads_its_views(migrated, split_testbed, db, tls_env, view):
    result = query(split_testbed, db, tls_env, "mail1", "postyard_mail", f"SELECT count(*) FROM {view}")
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("table", ["domains", "dkim_keys", "smtp_credentials", "api_keys"])
def test_the_mail_role_cannot_read_the_tables(migrated, split_testbed, db, tls_env, table):
    result = query(split_testbed, db, tls_env, "mail1", "postyard_mail", f"SELECT count(*) FROM {table}")
    assert "permission denied" in result.stderr


def test_dovecot_reads_only_the_credentials_view(migrated, split_testbed, db, tls_env):
    allowed = query(split_testbed, db, tls_env, "mail1", "postyard_dovecot",
                    "SELECT count(*) FROM mail_smtp_credentials")
    refused = query(split_testbed, db, tls_env, "mail1", "postyard_dovecot", "SELECT count(*) FROM mail_dkim_keys")
    assert allowed.returncode == 0, allowed.stderr
    assert "permission denied" in refused.stderr


def test_the_app_role_owns_nothing_so_row_level_security_binds_it(migrated, split_testbed, db, tls_env):
    owned = query(split_testbed, db, tls_env, "api1", "postyard_app",
                  "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tableowner = current_user")
    rows = query(split_testbed, db, tls_env, "api1", "postyard_app", "SELECT count(*) FROM domains")
    assert owned.stdout.strip() == "0"
    assert rows.returncode == 0 and rows.stdout.strip() == "0"  # no team set: RLS shows nothing
