"""Suspension, approval and sending quotas hold on every path: POST /emails, /emails/batch, SMTP submission and
the outbox, against real PostgreSQL, the intake server and the SMTP sink standing in for Postfix."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import msgspec
import pytest
from conftest import TeamKey, verified_domain
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession
from test_emails import message
from test_outbox import FIRST_WITHIN, IDLE_POLL_SECONDS, WOKEN_WITHIN, _start_worker, _wait, db, drain
from test_smtp_intake import _message, _submit, running_intake

from app.cli import create_team
from app.domain.emails.admission import resets_at
from app.domain.operators.services import Actor, resume_team, suspend_team
from app.lib.lookups import _LIVE as LIVE_LOOKUPS

REASON = "Complaints about unsolicited mail; write to abuse@operator.example"
NOTIFIED_WITHIN = 5.0  # seconds from a change of a team's row until the API has dropped its cached policy


@pytest.fixture
async def intake(settings) -> AsyncIterator[Path]:
    """The SMTP intake server, as Postfix's submission listeners reach it."""
    async with running_intake(settings) as path:
        yield path


async def _suspend(engine, team: TeamKey, reason: str = REASON) -> None:
    """As `postyard-api admin suspend` does it."""
    async with AsyncSession(engine) as session, session.begin():
        await suspend_team(session, Actor(), team.team_id, reason)


async def _resume(engine, team: TeamKey) -> None:
    """As `postyard-api admin resume` does it."""
    async with AsyncSession(engine) as session, session.begin():
        await resume_team(session, Actor(), team.team_id)


async def _set(postgres, team: TeamKey, assignments: str) -> None:
    """Change the team's row as an operator's SQL would, and wait until the API has heard of it: its cached
    policy goes on the notification (app/lib/lookups.py), which may reach it a moment after the commit."""
    db(postgres, f"UPDATE teams SET {assignments} WHERE id = '{team.team_id}'")
    deadline = time.monotonic() + NOTIFIED_WITHIN
    while any(lookups.teams.get(team.team_id) is not None for lookups in list(LIVE_LOOKUPS)):
        assert time.monotonic() < deadline, f"the API kept the team's policy {NOTIFIED_WITHIN} s after the change"
        await asyncio.sleep(0.01)


def _stored(postgres, team: TeamKey) -> int:
    return int(db(postgres, f"SELECT count(*) FROM emails WHERE team_id = '{team.team_id}'"))


def _counted(postgres, team: TeamKey, period: str = "day") -> str:
    """This UTC day's (or month's) count of the team."""
    return db(postgres, f"SELECT coalesce(sum(sent), 0) FROM team_send_counters WHERE team_id = '{team.team_id}' "
                        f"AND period = '{period}' AND period_start = date_trunc('{period}', now() AT TIME ZONE 'UTC')")


async def _smtp(path, sender: str) -> tuple[int, str]:
    return await _submit(path, f"orders@{sender}", [f"u{uuid.uuid4().hex[:8]}@example.org"], _message(sender))


# Suspension and approval


async def test_a_suspended_team_gets_403_with_the_reason_on_emails_and_batch_and_nothing_is_stored(
        client, team, sender, owner_engine, postgres):
    await _suspend(owner_engine, team)
    single = await client.post("/emails", json=message(sender), headers=team.headers)
    batch = await client.post("/emails/batch", json=[message(sender), message(sender)], headers=team.headers)
    for response in (single, batch):
        assert response.status_code == 403
        assert response.json()["name"] == "team_suspended" and REASON in response.json()["message"]
    assert _stored(postgres, team) == 0


async def test_a_suspended_team_gets_5_7_1_with_the_reason_over_smtp_and_nothing_is_stored(
        intake, team, sender, owner_engine, postgres):
    await _suspend(owner_engine, team)
    code, reply = await _smtp(intake, sender)
    assert code == 554 and reply.startswith("5.7.1 This team is suspended") and REASON in reply
    assert _stored(postgres, team) == 0


async def test_a_suspension_reason_cannot_break_the_smtp_reply_into_lines(intake, team, sender, owner_engine):
    async with owner_engine.begin() as conn:  # written straight into the table, past any check of the reason
        await conn.execute(text("UPDATE teams SET suspended_at = now(), suspension_reason = :r WHERE id = :t"),
                           {"r": "Spam\r\n250 2.0.0 Ok: queued as forged", "t": team.team_id})
    code, reply = await _smtp(intake, sender)
    assert code == 554 and reply.endswith("Spam 250 2.0.0 Ok: queued as forged") and "\n" not in reply


async def test_a_team_awaiting_approval_can_send_on_neither_path(client, intake, team, sender, postgres):
    await _set(postgres, team, "approved_at = NULL")
    response = await client.post("/emails", json=message(sender), headers=team.headers)
    code, reply = await _smtp(intake, sender)
    assert response.status_code == 403 and response.json()["name"] == "team_awaiting_approval"
    assert code == 554 and reply.startswith("5.7.1 This team is awaiting an operator's approval")
    assert _stored(postgres, team) == 0


async def test_resuming_a_team_lets_it_send_again(client, intake, team, sender, owner_engine):
    await _suspend(owner_engine, team)
    await _resume(owner_engine, team)
    response = await client.post("/emails", json=message(sender), headers=team.headers)
    code, _ = await _smtp(intake, sender)
    assert response.status_code == 200 and code == 250


# Held mail


async def test_a_suspended_teams_queued_and_scheduled_mail_is_held_and_delivered_after_resumption(
        client, team, sender, other_team, settings, owner_engine, smtp_sink, postgres):
    other = (await verified_domain(client, other_team, postgres))["name"]
    later = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S+00:00")
    queued = (await client.post("/emails", json=message(sender), headers=team.headers)).json()["id"]
    scheduled = (await client.post("/emails", json=message(sender, scheduled_at=later),
                                   headers=team.headers)).json()["id"]
    await _suspend(owner_engine, team)
    db(postgres, f"UPDATE emails SET next_attempt_at = now() WHERE id = '{scheduled}'")  # its time has come
    unaffected = (await client.post("/emails", json=message(other), headers=other_team.headers)).json()["id"]

    await drain(settings, owner_engine)
    held = db(postgres, f"SELECT string_agg(state || ':' || attempts, ',') FROM emails "
                        f"WHERE id IN ('{queued}', '{scheduled}')")
    assert len(smtp_sink.for_message_id(f"<{unaffected}@{other}>")) == 1
    assert [smtp_sink.for_message_id(f"<{i}@{sender}>") for i in (queued, scheduled)] == [[], []]
    assert held == "queued:0,queued:0"

    await _resume(owner_engine, team)
    await drain(settings, owner_engine)
    assert [len(smtp_sink.for_message_id(f"<{i}@{sender}>")) for i in (queued, scheduled)] == [1, 1]
    assert db(postgres, f"SELECT string_agg(DISTINCT state, ',') FROM emails "
                        f"WHERE id IN ('{queued}', '{scheduled}')") == "sent"


async def test_a_scheduled_email_held_by_a_suspension_keeps_its_time_after_resumption(
        client, team, sender, settings, owner_engine, smtp_sink, postgres):
    later = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S+00:00")
    scheduled = (await client.post("/emails", json=message(sender, scheduled_at=later),
                                   headers=team.headers)).json()["id"]
    await _suspend(owner_engine, team)
    await _resume(owner_engine, team)
    await drain(settings, owner_engine)
    assert smtp_sink.for_message_id(f"<{scheduled}@{sender}>") == []
    assert db(postgres, f"SELECT state FROM emails WHERE id = '{scheduled}'") == "queued"


async def test_resuming_a_team_wakes_a_waiting_worker_rather_than_its_poll(
        client, team, sender, other_team, env, owner_engine, smtp_sink, postgres):
    other = (await verified_domain(client, other_team, postgres))["name"]
    held = (await client.post("/emails", json=message(sender), headers=team.headers)).json()["id"]
    await _suspend(owner_engine, team)
    worker = _start_worker({**env, "POSTYARD_WORKER_POLL_INTERVAL": str(IDLE_POLL_SECONDS)})
    try:
        marker = (await client.post("/emails", json=message(other), headers=other_team.headers)).json()["id"]
        await _wait(lambda: smtp_sink.for_message_id(f"<{marker}@{other}>") != [], timeout=FIRST_WITHIN)
        await asyncio.sleep(0.5)  # the worker is idle now, waiting for its poll, with the held email due
        assert smtp_sink.for_message_id(f"<{held}@{sender}>") == []
        started = time.monotonic()
        await _resume(owner_engine, team)
        await _wait(lambda: smtp_sink.for_message_id(f"<{held}@{sender}>") != [], timeout=WOKEN_WITHIN)
    finally:
        worker.terminate()
        worker.wait(10)
    assert time.monotonic() - started < WOKEN_WITHIN


# Quotas


async def test_exactly_the_quota_is_accepted_out_of_concurrent_api_and_smtp_submissions(
        server, client, intake, team, postgres):
    sender = (await verified_domain(client, team, postgres))["name"]
    await _set(postgres, team, "daily_quota = 5")
    async with httpx.AsyncClient(base_url=server, headers=team.headers, timeout=30) as http:
        api = [http.post("/emails", json=message(sender)) for _ in range(8)]
        smtp = [_smtp(intake, sender) for _ in range(8)]
        results = await asyncio.gather(*api, *smtp)
    responses, replies = results[:8], results[8:]
    accepted = sum(r.status_code == 200 for r in responses) + sum(code == 250 for code, _ in replies)
    refused_api = [r for r in responses if r.status_code != 200]
    refused_smtp = [(code, text) for code, text in replies if code != 250]
    until_midnight = (resets_at(datetime.now(UTC), "day") - datetime.now(UTC)).total_seconds()

    assert accepted == 5 and _stored(postgres, team) == 5 and _counted(postgres, team) == "5"
    assert all(r.status_code == 429 and r.json()["name"] == "quota_exceeded" for r in refused_api)
    assert all(abs(int(r.headers["retry-after"]) - until_midnight) <= 5 for r in refused_api)
    assert all(code == 450 and text.startswith("4.7.1 ") and "daily quota of 5" in text
               for code, text in refused_smtp)


async def test_over_the_monthly_quota_retry_after_points_at_the_next_month(client, intake, team, sender, postgres):
    await _set(postgres, team, "daily_quota = 100, monthly_quota = 1")
    first = await client.post("/emails", json=message(sender), headers=team.headers)
    second = await client.post("/emails", json=message(sender), headers=team.headers)
    code, reply = await _smtp(intake, sender)
    until = (resets_at(datetime.now(UTC), "month") - datetime.now(UTC)).total_seconds()
    assert first.status_code == 200 and second.status_code == 429
    assert abs(int(second.headers["retry-after"]) - until) <= 5 and "monthly quota of 1" in second.json()["message"]
    assert code == 450 and "monthly quota of 1" in reply
    assert (_counted(postgres, team, "day"), _counted(postgres, team, "month")) == ("1", "1")


async def test_a_batch_counts_one_per_email_whatever_its_recipients_and_is_refused_whole_over_quota(
        client, team, sender, postgres):
    await _set(postgres, team, "daily_quota = 5")
    three = [message(sender, to=["a@example.org", "b@example.org"], cc=["c@example.org"]) for _ in range(3)]
    assert (await client.post("/emails/batch", json=three, headers=team.headers)).status_code == 200
    over = await client.post("/emails/batch", json=three, headers=team.headers)
    assert over.status_code == 429 and "Sending 3 more emails" in over.json()["message"]
    assert _stored(postgres, team) == 3 and _counted(postgres, team) == "3"
    assert (await client.post("/emails/batch", json=three[:2], headers=team.headers)).status_code == 200
    assert _counted(postgres, team) == "5"


async def test_counts_start_again_each_utc_day_and_month(client, team, sender, postgres):
    await _set(postgres, team, "daily_quota = 2, monthly_quota = 10")
    yesterday = "(now() AT TIME ZONE 'UTC')::date - 1"
    last_month = "date_trunc('month', now() AT TIME ZONE 'UTC')::date - interval '1 month'"
    db(postgres, f"INSERT INTO team_send_counters VALUES ('{team.team_id}', 'day', {yesterday}, 2), "
                 f"('{team.team_id}', 'month', {last_month}, 10)")
    statuses = [(await client.post("/emails", json=message(sender), headers=team.headers)).status_code
                for _ in range(3)]
    earlier = db(postgres, f"SELECT string_agg(sent::text, ',' ORDER BY period) FROM team_send_counters "
                           f"WHERE team_id = '{team.team_id}' AND ((period = 'day' AND period_start = {yesterday}) "
                           f"OR (period = 'month' AND period_start = {last_month}))")
    assert statuses == [200, 200, 429] and earlier == "2,10"
    assert (_counted(postgres, team, "day"), _counted(postgres, team, "month")) == ("2", "2")


async def test_a_send_that_fails_after_counting_gives_its_count_back(client, intake, team, sender, postgres):
    await _set(postgres, team, "daily_quota = 2")
    function = f"fail_{team.team_id.hex}"
    db(postgres, f"CREATE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                 f"RAISE EXCEPTION 'disk full' USING ERRCODE = 'disk_full'; END $$; "
                 f"CREATE TRIGGER {function} BEFORE INSERT ON emails FOR EACH ROW "
                 f"WHEN (NEW.team_id = '{team.team_id}') EXECUTE FUNCTION {function}()")
    try:
        api = await client.post("/emails", json=message(sender), headers=team.headers)
        code, _ = await _smtp(intake, sender)
    finally:
        db(postgres, f"DROP TRIGGER {function} ON emails; DROP FUNCTION {function}()")
    assert (api.status_code, code) == (503, 451) and _counted(postgres, team) == "0"
    statuses = [(await client.post("/emails", json=message(sender), headers=team.headers)).status_code
                for _ in range(3)]
    assert statuses == [200, 200, 429]


async def test_test_keys_count_nothing_against_a_quota(client, settings, postgres):
    team = TeamKey(*await create_team(settings, "test-mode-quota", mode="test"))
    domain = (await verified_domain(client, team, postgres))["name"]
    await _set(postgres, team, "daily_quota = 0, monthly_quota = 0")
    response = await client.post("/emails/batch", json=[message(domain), message(domain)], headers=team.headers)
    assert response.status_code == 200 and _counted(postgres, team) == "0"


async def test_a_team_without_quotas_writes_no_counters(client, intake, team, sender, postgres):
    await client.post("/emails", json=message(sender), headers=team.headers)
    await _smtp(intake, sender)
    assert _stored(postgres, team) == 2
    assert db(postgres, f"SELECT count(*) FROM team_send_counters WHERE team_id = '{team.team_id}'") == "0"


async def test_mail_of_a_domain_no_longer_verified_is_held_until_it_is_verified_again(
        client, team, sender, settings, owner_engine, smtp_sink, postgres):
    queued = (await client.post("/emails", json=message(sender), headers=team.headers)).json()["id"]
    # What losing the name to another team, or a failed re-verification, leaves behind.
    db(postgres, f"UPDATE domains SET status = 'failed' WHERE team_id = '{team.team_id}' AND name = '{sender}'")
    await drain(settings, owner_engine)
    held = db(postgres, f"SELECT state || ':' || attempts FROM emails WHERE id = '{queued}'")
    db(postgres, f"UPDATE domains SET status = 'verified' WHERE team_id = '{team.team_id}' AND name = '{sender}'")
    await drain(settings, owner_engine)
    assert held == "queued:0"
    assert len(smtp_sink.for_message_id(f"<{queued}@{sender}>")) == 1


async def test_mail_of_a_domain_verified_moments_ago_waits_for_its_key_to_reach_opendkim(
        client, team, sender, settings, owner_engine, smtp_sink, postgres):
    queued = (await client.post("/emails", json=message(sender), headers=team.headers)).json()["id"]
    db(postgres, f"UPDATE domains SET verified_at = now() WHERE team_id = '{team.team_id}' AND name = '{sender}'")
    await drain(msgspec.structs.replace(settings, dkim_settle_seconds=60), owner_engine)
    held = db(postgres, f"SELECT state || ':' || attempts FROM emails WHERE id = '{queued}'")
    await drain(settings, owner_engine)  # the settling time passed (0 in this suite)
    assert held == "queued:0"
    assert len(smtp_sink.for_message_id(f"<{queued}@{sender}>")) == 1


async def test_mail_of_a_domain_whose_tls_mode_changed_moments_ago_waits_for_postfixs_maps(
        client, team, sender, settings, owner_engine, smtp_sink, postgres):
    domain_id = db(postgres, f"SELECT id FROM domains WHERE team_id = '{team.team_id}' AND name = '{sender}'")
    changed = await client.patch(f"/domains/{domain_id}", json={"tls": "enforced"}, headers=team.headers)
    queued = (await client.post("/emails", json=message(sender), headers=team.headers)).json()["id"]
    await drain(msgspec.structs.replace(settings, dkim_settle_seconds=60), owner_engine)
    held = db(postgres, f"SELECT state || ':' || attempts FROM emails WHERE id = '{queued}'")
    await drain(settings, owner_engine)  # the settling time passed (0 in this suite)
    assert changed.status_code == 200
    assert held == "queued:0"
    assert len(smtp_sink.for_message_id(f"<{queued}@{sender}>")) == 1
