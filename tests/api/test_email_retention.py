"""Retention of metadata: settled emails, their events and settled webhook deliveries go after
POSTYARD_EMAIL_RETENTION_DAYS; unsettled emails and suppressions stay; 0 (the default) keeps everything."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid

from sqlalchemy.ext.asyncio import create_async_engine
from test_emails import message
from test_outbox import db, drain

from app.cli import purge_email_metadata
from app.db.roles import WORKER
from app.domain.emails.retention import purge_old_emails

DAYS = 30


async def _send(client, team, sender, **extra) -> str:
    response = await client.post("/emails", json=message(sender, **extra), headers=team.headers)
    assert response.status_code == 200, response.text
    return response.json()["id"]


def _age(postgres, email_id: str, days: int) -> None:
    """Move the email and all its events `days` days into the past."""
    db(postgres, f"UPDATE emails SET created_at = created_at - interval '{days} days', "
                 f"sent_at = sent_at - interval '{days} days' WHERE id = '{email_id}';"
                 f"UPDATE email_events SET created_at = created_at - interval '{days} days' "
                 f"WHERE email_id = '{email_id}'")


def _stored(postgres, *email_ids: str) -> dict[str, int]:
    """Which of the emails are still stored, with how many events each."""
    listed = ", ".join(f"'{i}'" for i in email_ids)
    out = db(postgres, f"SELECT e.id, (SELECT count(*) FROM email_events v WHERE v.email_id = e.id) "
                       f"FROM emails e WHERE e.id IN ({listed})")
    return {row.split("|")[0]: int(row.split("|")[1]) for row in out.splitlines()}


def _events(postgres, email_id: str) -> int:
    return int(db(postgres, f"SELECT count(*) FROM email_events WHERE email_id = '{email_id}'"))


async def test_settled_emails_older_than_the_period_go_with_their_events_and_younger_ones_stay(
        client, team, sender, settings, owner_engine, smtp_sink, postgres):
    old, young = await _send(client, team, sender), await _send(client, team, sender)
    await drain(settings, owner_engine)
    _age(postgres, old, DAYS + 1)
    _age(postgres, young, DAYS - 1)
    purged = await purge_old_emails(owner_engine, DAYS)
    fetched = await client.get(f"/emails/{old}", headers=team.headers)
    assert purged.emails >= 1 and _stored(postgres, old, young) == {young: 2}
    assert _events(postgres, old) == 0 and fetched.status_code == 404


async def test_an_old_email_with_a_recent_event_stays(client, team, sender, settings, owner_engine, smtp_sink,
                                                      postgres):
    email_id = await _send(client, team, sender)
    await drain(settings, owner_engine)
    _age(postgres, email_id, DAYS + 1)
    db(postgres, f"UPDATE email_events SET created_at = now() - interval '1 day' WHERE email_id = '{email_id}' "
                 "AND type = 'sent'")
    await purge_old_emails(owner_engine, DAYS)
    assert _stored(postgres, email_id) == {email_id: 2}


async def test_queued_sending_and_unknown_outcome_emails_stay_whatever_their_age(
        client, team, sender, owner_engine, postgres):
    queued, leased, unknown, accepted = [await _send(client, team, sender) for _ in range(4)]
    db(postgres, f"UPDATE emails SET next_attempt_at = now() + interval '1 hour' WHERE id = '{queued}';"
                 f"UPDATE emails SET state = 'sending', lease_until = now() + interval '1 hour' WHERE id = '{leased}';"
                 f"UPDATE emails SET state = 'sending', queue_id = 'ABC123', outcome_unknown_since = now() - "
                 f"interval '{DAYS + 1} days' WHERE id = '{unknown}';"
                 f"UPDATE emails SET mta_accepted = true, next_attempt_at = now() + interval '1 hour' "
                 f"WHERE id = '{accepted}'")
    for email_id in (queued, leased, unknown, accepted):
        _age(postgres, email_id, 10 * DAYS)
    await purge_old_emails(owner_engine, DAYS)
    assert set(_stored(postgres, queued, leased, unknown, accepted)) == {queued, leased, unknown, accepted}


async def test_an_old_suppressed_email_goes_and_the_suppression_stays(client, team, sender, owner_engine, postgres):
    blocked = f"b{uuid.uuid4().hex[:8]}@example.org"
    assert (await client.post("/suppressions", json={"email": blocked}, headers=team.headers)).status_code == 201
    email_id = await _send(client, team, sender, to=[blocked])
    _age(postgres, email_id, DAYS + 1)
    await purge_old_emails(owner_engine, DAYS)
    listed = (await client.get("/suppressions", headers=team.headers)).json()["data"]
    assert _stored(postgres, email_id) == {} and blocked in [s["email"] for s in listed]


async def test_by_default_every_email_is_kept_whatever_its_age(
        client, team, sender, settings, owner_engine, smtp_sink, postgres):
    email_id = await _send(client, team, sender)
    await drain(settings, owner_engine)
    _age(postgres, email_id, 3650)
    purged = await purge_email_metadata(settings)
    assert settings.email_retention_days == 0 and purged == (0, 0)
    assert _stored(postgres, email_id) == {email_id: 2}


async def test_a_backlog_larger_than_a_batch_is_deleted_a_batch_at_a_time(
        client, team, sender, settings, owner_engine, smtp_sink, postgres):
    email_ids = [await _send(client, team, sender) for _ in range(5)]
    await drain(settings, owner_engine)
    for email_id in email_ids:
        _age(postgres, email_id, DAYS + 1)
    purged = await purge_old_emails(owner_engine, DAYS, batch=2)
    assert purged.emails >= 5 and _stored(postgres, *email_ids) == {}


async def test_settled_webhook_deliveries_older_than_the_period_go_and_pending_ones_stay(
        client, team, sender, owner_engine, postgres):
    hook = await client.post("/webhooks", json={"endpoint": "http://127.0.0.1:9/hook", "events": ["email.queued"]},
                             headers=team.headers)
    assert hook.status_code == 201, hook.text
    for _ in range(4):
        await _send(client, team, sender)
    db(postgres, "UPDATE webhook_deliveries w SET state = (ARRAY['succeeded', 'failed', 'pending', 'succeeded'])[o.n], "
                 f"created_at = now() - CASE WHEN o.n = 4 THEN interval '1 day' ELSE interval '{DAYS + 1} days' END "
                 "FROM (SELECT id, row_number() OVER (ORDER BY created_at) AS n FROM webhook_deliveries "
                 f"WHERE webhook_id = '{hook.json()['id']}') o WHERE o.id = w.id")
    purged = await purge_old_emails(owner_engine, DAYS)
    left = db(postgres, f"SELECT state, extract(day FROM now() - created_at)::int FROM webhook_deliveries "
                        f"WHERE webhook_id = '{hook.json()['id']}' ORDER BY created_at")
    assert purged.webhook_deliveries >= 2 and left.splitlines() == [f"pending|{DAYS + 1}", "succeeded|1"]


async def test_the_purge_command_takes_another_period_and_refuses_zero(
        client, team, sender, env, settings, owner_engine, smtp_sink, postgres):
    email_id = await _send(client, team, sender)
    await drain(settings, owner_engine)
    _age(postgres, email_id, 10)
    command = [sys.executable, "-m", "app.cli", "purge-email-metadata", "--days"]
    refused = subprocess.run([*command, "0"], env={**os.environ, **env}, capture_output=True, text=True, timeout=60)
    kept = _stored(postgres, email_id)
    done = subprocess.run([*command, "7"], env={**os.environ, **env}, capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2 and kept == {email_id: 2}
    assert done.returncode == 0 and "emails with their events" in done.stdout, done.stderr
    assert _stored(postgres, email_id) == {}


async def test_the_worker_purges_old_emails_when_a_retention_period_is_set(
        client, team, sender, env, settings, owner_engine, smtp_sink, postgres):
    email_id = await _send(client, team, sender)
    await drain(settings, owner_engine)
    _age(postgres, email_id, DAYS + 1)
    worker = subprocess.Popen(
        [sys.executable, "-c", "import sys; from app.cli import main; sys.exit(main(['worker']))"],
        env={**os.environ, **env, "POSTYARD_EMAIL_RETENTION_DAYS": str(DAYS)},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while _stored(postgres, email_id):
            assert time.monotonic() < deadline, "the worker did not purge within 30 s"
            await asyncio.sleep(0.2)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)


async def test_the_worker_role_may_purge_old_emails_and_their_events(
        client, team, sender, settings, owner_engine, smtp_sink, postgres):
    email_id = await _send(client, team, sender)
    await drain(settings, owner_engine)
    _age(postgres, email_id, DAYS + 1)
    engine = create_async_engine(postgres.url(WORKER))
    try:
        purged = await purge_old_emails(engine, DAYS)
    finally:
        await engine.dispose()
    assert purged.emails >= 1 and _stored(postgres, email_id) == {} and _events(postgres, email_id) == 0
