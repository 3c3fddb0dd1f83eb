"""Housekeeping: audit entries go after the retention period, dead sessions go, and the worker does both hourly."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid

from conftest import sign_up

from app.cli import purge_audit_logs, purge_sessions

PASSWORD = "correct horse battery staple"


def _owner(postgres, sql: str) -> str:
    return postgres.psql(sql, user="postyard_owner", database="postyard").strip()


def _backdate_oldest_audit_entry(postgres, team_id: uuid.UUID, days: int) -> None:
    """Age the team's first entry; the append-only trigger is held off for this one update only."""
    _owner(postgres, "ALTER TABLE audit_logs DISABLE TRIGGER audit_logs_append_only;"
                     f"UPDATE audit_logs SET created_at = now() - interval '{days} days' WHERE id = "
                     f"(SELECT id FROM audit_logs WHERE team_id = '{team_id}' ORDER BY created_at LIMIT 1);"
                     "ALTER TABLE audit_logs ENABLE TRIGGER audit_logs_append_only;")


def _audit_ages(postgres, team_id: uuid.UUID) -> list[int]:
    """Whole days since each of the team's entries was written, oldest first."""
    out = _owner(postgres, f"SELECT extract(day FROM now() - created_at)::int FROM audit_logs "
                           f"WHERE team_id = '{team_id}' ORDER BY created_at")
    return [int(line) for line in out.split()]


async def _user_with_three_sessions(client, postgres) -> str:
    """A user who registered and logged in twice: the first session expired, the second revoked, the third live."""
    email = f"u{uuid.uuid4().hex[:10]}@example.test"
    assert (await sign_up(client, email, PASSWORD)).status_code == 201
    for _ in range(2):
        assert (await client.post("/auth/login", json={"email": email, "password": PASSWORD})).status_code == 200
    sessions = f"SELECT s.id FROM sessions s JOIN users u ON u.id = s.user_id WHERE u.email = '{email}'"
    _owner(postgres, f"UPDATE sessions SET expires_at = now() - interval '1 minute' "
                     f"WHERE id = ({sessions} ORDER BY s.created_at LIMIT 1)")
    _owner(postgres, f"UPDATE sessions SET revoked_at = now() WHERE id = ({sessions} ORDER BY s.created_at LIMIT 1 "
                     f"OFFSET 1)")
    return email


def _session_count(postgres, email: str) -> int:
    return int(_owner(postgres, f"SELECT count(*) FROM sessions s JOIN users u ON u.id = s.user_id "
                                f"WHERE u.email = '{email}'"))


async def test_audit_entries_older_than_the_retention_period_are_purged_and_recent_ones_kept(
        client, team, settings, postgres):
    assert (await client.post("/api-keys", json={"name": "second"}, headers=team.headers)).status_code == 201
    _backdate_oldest_audit_entry(postgres, team.team_id, settings.audit_retention_days + 1)
    purged = await purge_audit_logs(settings)
    assert purged >= 1 and _audit_ages(postgres, team.team_id) == [0]


async def test_an_audit_entry_younger_than_the_retention_period_is_kept(team, settings, postgres):
    _backdate_oldest_audit_entry(postgres, team.team_id, settings.audit_retention_days - 1)
    await purge_audit_logs(settings)
    assert _audit_ages(postgres, team.team_id) == [settings.audit_retention_days - 1]


async def test_the_audit_purge_command_takes_another_period(team, env, postgres):
    _backdate_oldest_audit_entry(postgres, team.team_id, 10)
    done = subprocess.run([sys.executable, "-m", "app.cli", "purge-audit-logs", "--days", "7"],
                          env={**os.environ, **env}, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "audit entries" in done.stdout, done.stderr
    assert _audit_ages(postgres, team.team_id) == []


async def test_expired_and_revoked_sessions_are_deleted_and_the_live_one_still_authenticates(
        client, settings, postgres):
    email = await _user_with_three_sessions(client, postgres)
    purged = await purge_sessions(settings)
    me = await client.get("/auth/me")
    assert purged >= 2 and _session_count(postgres, email) == 1 and me.status_code == 200


async def test_the_worker_purges_old_audit_entries_and_dead_sessions_when_it_starts(
        client, team, env, settings, postgres, smtp_sink):
    email = await _user_with_three_sessions(client, postgres)
    _backdate_oldest_audit_entry(postgres, team.team_id, settings.audit_retention_days + 1)
    worker = subprocess.Popen(
        [sys.executable, "-c", "import sys; from app.cli import main; sys.exit(main(['worker']))"],
        env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while _audit_ages(postgres, team.team_id) or _session_count(postgres, email) != 1:
            assert time.monotonic() < deadline, "the worker did not purge within 30 s"
            await asyncio.sleep(0.2)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)
