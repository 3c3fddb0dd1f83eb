"""Housekeeping on a deployed host: the purge commands delete backdated rows, and a failed backup shows in status."""

from __future__ import annotations

import subprocess
import sys
import uuid

import pytest

from postyard.appliance_client import TestbedAppliance
from postyard.deployer import REPO
from postyard.ssh import SshError, ssh_run
from postyard.testbed import state as testbed_state
from postyard.unit_health import failed_units
from roles.postgresql_backup import DEFAULTS as BACKUP_DEFAULTS

AUDIT_RETENTION_DAYS = 90  # POSTYARD_AUDIT_RETENTION_DAYS's default; the testbed does not change it


@pytest.fixture(scope="module")
def bed(single_testbed: testbed_state.TestbedState) -> TestbedAppliance:
    return TestbedAppliance(single_testbed)


def psql(bed: TestbedAppliance, sql: str) -> str:
    """`sql` as the postgres superuser on the db host (session_replication_role=replica there skips the
    audit log's append-only trigger, which is how rows are backdated)."""
    return ssh_run(bed.target(bed.db), ["runuser", "-u", "postgres", "--", "psql", "-XAtq", "-v", "ON_ERROR_STOP=1",
                                        "-c", sql, "postyard"]).strip()


def on_api_host(bed: TestbedAppliance, *argv: str) -> str:
    return ssh_run(bed.target(bed.api), ["postyard-api", *argv], timeout=120)


def test_the_audit_purge_command_deletes_entries_older_than_ninety_days_and_keeps_the_rest(bed):
    old, recent = bed.create_team("housekeeping old"), bed.create_team("housekeeping recent")
    psql(bed, "SET session_replication_role = replica; UPDATE audit_logs SET created_at = now() - "
              f"interval '{AUDIT_RETENTION_DAYS + 1} days' WHERE team_id = '{old.id}'")
    printed = on_api_host(bed, "purge-audit-logs")
    left = psql(bed, f"SELECT team_id, count(*) FROM audit_logs WHERE team_id IN ('{old.id}', '{recent.id}') "
                     "GROUP BY team_id")
    assert printed.startswith("purged ") and left == f"{recent.id}|1"


def test_the_session_purge_command_deletes_expired_and_revoked_sessions_and_keeps_live_ones(bed):
    user = uuid.uuid4()
    psql(bed, f"INSERT INTO users (id, email, password_hash) VALUES ('{user}', 'hk-{user.hex[:10]}@example.test', "
              "'not a hash');"
              "INSERT INTO sessions (id, token_hash, user_id, csrf_token, expires_at, revoked_at) "
              "SELECT gen_random_uuid(), decode(md5(random()::text), 'hex'), "
              f"'{user}', 'csrf', now() + e.expires, e.revoked FROM (VALUES "
              "(interval '-1 hour', NULL::timestamptz), (interval '1 day', now()), (interval '1 day', NULL)) "
              "AS e(expires, revoked)")
    try:
        printed = on_api_host(bed, "purge-sessions")
        left = psql(bed, f"SELECT count(*) FILTER (WHERE expires_at > now() AND revoked_at IS NULL), count(*) "
                         f"FROM sessions WHERE user_id = '{user}'")
    finally:
        psql(bed, f"DELETE FROM users WHERE id = '{user}'")
    assert printed.startswith("purged ") and left == "1|1"


def test_the_email_purge_command_deletes_settled_emails_and_events_past_the_period_and_keeps_the_rest(bed):
    team = bed.create_team("housekeeping emails")
    ages = {"old": ("sent", 31), "young": ("sent", 29), "unsettled": ("queued", 31)}
    # domain_id NULL and live mode: no worker ever claims the queued one.
    psql(bed, "WITH e AS (INSERT INTO emails (id, team_id, mode, from_address, to_addresses, subject, message_id, "
              "envelope_from, recipients, size, state, last_event, next_attempt_at, created_at) "
              f"SELECT gen_random_uuid(), '{team.id}', 'live', 'a@example.test', ARRAY['b@example.org'], v.name, "
              "v.name || '.' || gen_random_uuid() || '@example.test', 'a@example.test', ARRAY['b@example.org'], 1, "
              "v.state, v.state, now() + interval '1 day', now() - make_interval(days => v.days) "
              "FROM (VALUES " + ", ".join(f"('{n}', '{s}', {d})" for n, (s, d) in ages.items()) +
              ") AS v(name, state, days) RETURNING id, team_id, state, created_at) "
              "INSERT INTO email_events (id, team_id, email_id, type, created_at) "
              "SELECT gen_random_uuid(), team_id, id, state, created_at FROM e")
    printed = bed.on_mail_host(["postyard-api", "purge-email-metadata", "--days", "30"], timeout=120)
    left = psql(bed, "SELECT e.subject, count(v.id) FROM emails e LEFT JOIN email_events v ON v.email_id = e.id "
                     f"WHERE e.team_id = '{team.id}' GROUP BY e.subject ORDER BY e.subject")
    assert printed.startswith("purged ") and left.splitlines() == ["unsettled|1", "young|1"]


@pytest.fixture
def failed_backup(bed):
    """The nightly backup, run once while its directory refuses writes; afterwards the directory and the
    unit's state are as the deploy left them."""
    directory, db = BACKUP_DEFAULTS["backup_dir"], bed.target(bed.db)
    ssh_run(db, ["chmod", "500", directory])
    try:
        with pytest.raises(SshError):
            ssh_run(db, ["systemctl", "start", "postyard-backup.service"], timeout=300)
        yield db
    finally:
        ssh_run(db, ["chmod", "700", directory])
        ssh_run(db, ["systemctl", "reset-failed", "postyard-backup.service"])


def test_a_failed_backup_leaves_a_failed_unit_that_status_lists(bed, failed_backup):
    status = subprocess.run(
        [sys.executable, "-m", "postyard", "status", "--units", "--testbed", bed.bed.name],
        cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
    assert "postyard-backup.service" in failed_units(failed_backup)
    assert status.returncode == 1 and "postyard-backup.service" in status.stdout, status.stdout + status.stderr
