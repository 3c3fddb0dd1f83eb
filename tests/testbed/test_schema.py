"""The app's migrations on the deployed database: the owner migrates over TLS from the schema host
(the first mail host), no api host can log in as the owner or holds its credential, and each platform
role, each mail-host service's among them, reaches exactly what it should."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys

import pytest

from app.db import roles
from app.host_layout import INTAKE_SERVICE, POSTFIX_EVENTS_SERVICE, WEBHOOKS_SERVICE, WORKER_SERVICE
from postyard.deployer import REPO
from postyard.ssh import ssh_run

MIGRATE = "import sys; from app.db.migrate import upgrade; upgrade(sys.argv[1])"
MAIL_VIEWS = ("mail_sender_logins", "mail_dkim_keys", "mail_domain_tls_policy", "mail_bounce_domains",
              "mail_receiving_domains")


@pytest.fixture(scope="module")
def db(split_hosts):
    return split_hosts["db1"]


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
    result = in_netns(split_testbed, "mail1", [sys.executable, "-c", MIGRATE, url], tls_env)
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


# What each mail-host service's role may do, table by table (columns where a grant names them): the list an
# auditor reads. A grant more or less than this fails the test.
SERVICE_GRANTS: dict[str, dict[str, set[str]]] = {
    "postyard_worker": {
        "emails": {"SELECT", "UPDATE", "DELETE"}, "email_events": {"SELECT", "INSERT", "UPDATE(detail)"},
        "webhooks": {"SELECT"}, "webhook_deliveries": {"SELECT", "INSERT", "DELETE", "UPDATE(payload)"},
        "teams": {"SELECT"}, "domains": {"SELECT"},
        "postfix_log_positions": {"SELECT"}, "ignored_reports": {"SELECT", "DELETE"},
        "sessions": {"SELECT", "DELETE"}, "received_emails": {"SELECT", "DELETE"},
    },
    "postyard_log_follower": {
        "emails": {"SELECT", "UPDATE(last_event,mta_accepted,queue_id,updated_at)"},
        "email_events": {"SELECT", "INSERT"}, "webhooks": {"SELECT"}, "webhook_deliveries": {"INSERT"},
        "suppressions": {"SELECT", "INSERT", "UPDATE(email)"},
        "postfix_log_positions": {"SELECT", "INSERT", "UPDATE(logged_through,updated_at)"},
    },
    "postyard_bounce": {
        "emails": {"SELECT", "UPDATE(last_event,updated_at)"}, "email_events": {"SELECT", "INSERT"},
        "webhooks": {"SELECT"}, "webhook_deliveries": {"INSERT"}, "suppressions": {"SELECT", "INSERT", "UPDATE(email)"},
        "ignored_reports": {"INSERT"}, "ignored_report_totals": {"SELECT", "INSERT", "UPDATE(count)"},
        "received_emails": {"INSERT", "SELECT(id,queue_id,team_id)"}, "mail_receiving_domains": {"SELECT"},
    },
    "postyard_intake": {
        "emails": {"SELECT(id,last_event,message_id)", "INSERT", "UPDATE(last_event,updated_at)"},
        "email_events": {"SELECT", "INSERT"}, "webhooks": {"SELECT"}, "webhook_deliveries": {"INSERT"},
        "domains": {"SELECT"}, "suppressions": {"SELECT"}, "teams": {"SELECT"},
        "team_send_counters": {"SELECT", "INSERT", "UPDATE(sent)"},
    },
    "postyard_webhooks": {
        "webhooks": {"SELECT", "UPDATE(disabled_reason,status,updated_at)"},
        "webhook_deliveries": {"SELECT", "UPDATE"},
    },
}
# Each service's unit, and the application_name its connections carry (app/db/engines.py), by its role.
SERVICE_UNITS = {roles.WORKER: (WORKER_SERVICE, "postyard-worker"),
                 roles.LOG_FOLLOWER: (POSTFIX_EVENTS_SERVICE, "postyard-log-follower"),
                 roles.INTAKE: (INTAKE_SERVICE, "postyard-smtp-intake"),
                 roles.WEBHOOKS: (WEBHOOKS_SERVICE, "postyard-webhooks")}
GRANTS_QUERY = """
SELECT table_name, privilege_type FROM information_schema.role_table_grants
WHERE grantee = '{role}' AND table_schema = 'public'
UNION ALL
SELECT c.table_name, c.privilege_type || '(' || string_agg(c.column_name, ',' ORDER BY c.column_name) || ')'
FROM information_schema.column_privileges c
WHERE c.grantee = '{role}' AND c.table_schema = 'public'
  AND NOT EXISTS (SELECT 1 FROM information_schema.role_table_grants t WHERE t.grantee = c.grantee
                  AND t.table_name = c.table_name AND t.privilege_type = c.privilege_type)
GROUP BY c.table_name, c.privilege_type
"""


def granted(db, role: str) -> dict[str, set[str]]:
    sql = shlex.quote(GRANTS_QUERY.format(role=role))
    rows = ssh_run(db, f"runuser -u postgres -- psql -d postyard -XAtF' ' -c {sql}")
    listing: dict[str, set[str]] = {}
    for line in rows.splitlines():
        table, privilege = line.split(" ", 1)
        listing.setdefault(table, set()).add(privilege)
    return listing


@pytest.mark.parametrize("role", sorted(SERVICE_GRANTS))
def test_each_service_role_holds_exactly_its_grants(split_testbed, db, role):
    listing = granted(db, role)
    print(f"{role}: " + "; ".join(f"{table} {', '.join(sorted(p))}" for table, p in sorted(listing.items())))
    assert listing == SERVICE_GRANTS[role]


@pytest.mark.parametrize("role", sorted(SERVICE_GRANTS))
def test_a_service_role_cannot_read_secrets_or_change_the_schema(migrated, split_testbed, db, tls_env, role):
    secrets = query(split_testbed, db, tls_env, "mail1", role, "SELECT count(*) FROM api_keys")
    schema = query(split_testbed, db, tls_env, "mail1", role, "CREATE TABLE intruder (id int)")
    dropped = query(split_testbed, db, tls_env, "mail1", role, "DROP TABLE emails")
    assert "permission denied" in secrets.stderr
    assert "permission denied" in schema.stderr
    assert "must be owner" in dropped.stderr


@pytest.mark.parametrize("role", sorted(SERVICE_UNITS))
def test_each_mail_service_connects_as_its_own_role(split_testbed, split_hosts, db, role):
    unit, application = SERVICE_UNITS[role]
    env_file = f"/etc/postyard/{unit}.env"
    mail = split_hosts["mail1"]
    assert ssh_run(mail, f"stat -c '%U %a' {env_file}").split() == ["root", "600"]
    assert f"://{role}:" in ssh_run(mail, f"cat {env_file}")
    assert env_file in ssh_run(mail, f"systemctl show -P EnvironmentFiles {unit}")
    # the ones that connect at start are seen connected as their role; the intake connects at its first message
    sql = f"SELECT DISTINCT usename FROM pg_stat_activity WHERE application_name = '{application}'"
    seen = ssh_run(db, f"runuser -u postgres -- psql -d postyard -XAt -c {shlex.quote(sql)}").split()
    assert seen in ([role], []) if role == roles.INTAKE else seen == [role]


def test_the_bounce_pipe_reads_its_role_and_nothing_of_the_owner_from_the_shared_settings(split_hosts):
    shared = ssh_run(split_hosts["mail1"], "cat /etc/postyard/app.env")
    assert "POSTYARD_BOUNCE_DATABASE_URL=postgresql+asyncpg://postyard_bounce:" in shared
    assert "postyard_owner" not in shared


def test_the_owner_cannot_log_in_from_an_api_host(split_testbed, db, tls_env):
    refused = query(split_testbed, db, tls_env, "api1", "postyard_owner", "SELECT 1")
    assert "pg_hba.conf rejects connection" in refused.stderr


@pytest.mark.parametrize("api_host", ["api1", "api2"])
def test_no_api_host_holds_the_owner_credential(split_testbed, split_hosts, db, api_host):
    password = db.secrets().get("postgresql-postyard_owner")
    found = ssh_run(
        split_hosts[api_host],
        f"grep -rlsF -e {shlex.quote(password)} /etc /opt /var/lib /root /home /proc/[0-9]*/environ || true")
    assert found.strip() == ""
    # the check can see it: the schema host has it, in a file only root reads
    assert ssh_run(split_hosts["mail1"], f"grep -lsF -e {shlex.quote(password)} /etc/postyard/migrate.env").strip()
