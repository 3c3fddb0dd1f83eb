"""Settling in batches: the worker records a claimed batch in one transaction, the log follower applies what it
read within its window in one; a crash in between loses nothing and leaves the email to Postfix's log."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator

import msgspec
import pytest
from sqlalchemy import event
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine
from test_emails import message
from test_outbox import _read_log_past_the_grace, _settle, db, drain

from app.domain.emails.outbox import Outbox
from app.domain.emails.submission import Submitter
from app.domain.events.ingest import JournalEntry, follow, ingest_lines


async def _wait(predicate, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


def _ids(ids: list[str]) -> str:
    return ", ".join(f"'{i}'" for i in ids)


async def _send(client, team, sender, count: int) -> list[str]:
    batch = [message(sender) for _ in range(count)]
    return [e["id"] for e in (await client.post("/emails/batch", json=batch, headers=team.headers)).json()["data"]]


def _log_lines(smtp_sink, *daemons: str) -> list[str]:
    with smtp_sink.lock:
        return [line for line in smtp_sink.log_lines if any(f"postfix/{d}[" in line for d in daemons)]


async def test_a_claimed_batch_is_settled_in_one_transaction_with_its_events(
        client, team, sender, settings, owner_engine, smtp_sink, postgres):
    ids = await _send(client, team, sender, 4)
    await drain(settings, owner_engine)
    emails = db(postgres, f"SELECT string_agg(DISTINCT xmin::text, ','), string_agg(DISTINCT state, ','), "
                          f"string_agg(DISTINCT last_event, ',') FROM emails WHERE id IN ({_ids(ids)})")
    events = db(postgres, f"SELECT string_agg(DISTINCT xmin::text, ',') FROM email_events "
                          f"WHERE email_id IN ({_ids(ids)}) AND type = 'sent'")
    writer, states, last_events = emails.split("|")
    assert "," not in writer and events == writer
    assert (states, last_events) == ("sent", "sent")


async def test_a_batch_settles_what_it_submitted_before_it_renews_its_leases(
        client, team, sender, settings, owner_engine, smtp_sink, postgres):
    ids = await _send(client, team, sender, 3)
    smtp_sink.data_delay = 0.6 * settings.worker_lease_seconds  # each transaction outlasts half the lease
    submitter = Submitter(settings)
    draining = asyncio.create_task(Outbox(settings, owner_engine).drain_once(submitter))
    try:
        await _wait(lambda: smtp_sink.submitted(f"<{ids[1]}@{sender}>") == 1)  # the second is in Postfix's hands
        midway = db(postgres, f"SELECT string_agg(state, ',' ORDER BY array_position(ARRAY[{_ids(ids)}]::uuid[], id)) "
                              f"FROM emails WHERE id IN ({_ids(ids)})")
        await draining
    finally:
        await submitter.close()
    assert midway == "sent,sending,sending"
    assert db(postgres, f"SELECT count(*) FROM emails WHERE id IN ({_ids(ids)}) AND state = 'sent'") == "3"


def _start_worker(env: dict[str, str]) -> subprocess.Popen:
    # A long lease: the test, not the clock, decides when the dead worker's leases lapse.
    return subprocess.Popen([sys.executable, "-c", "import sys; from app.cli import main; sys.exit(main(['worker']))"],
                            env={**os.environ, **env, "POSTYARD_WORKER_CONCURRENCY": "1",
                                 "POSTYARD_WORKER_BATCH_SIZE": "5", "POSTYARD_WORKER_LEASE_SECONDS": "60"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def test_a_worker_killed_between_submitting_and_settling_leaves_its_batch_to_the_log_and_sends_each_once(
        client, team, sender, settings, env, owner_engine, smtp_sink, postgres):
    ids = await _send(client, team, sender, 5)
    smtp_sink.data_delay = 0.2
    worker = _start_worker(env)
    try:
        await _wait(lambda: sum(smtp_sink.submitted(f"<{i}@{sender}>") for i in ids) >= 2)
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
    await asyncio.sleep(0.5)  # the sink finishes the transaction the worker died in, as Postfix would
    accepted = [i for i in ids if smtp_sink.for_message_id(f"<{i}@{sender}>")]
    unsettled = db(postgres, f"SELECT count(*) FROM emails WHERE id IN ({_ids(ids)}) AND state = 'sending' "
                             "AND lease_until > now()")

    # The lease lapses; the log follower had read Postfix's cleanup lines (the Message-IDs) but not yet qmgr's.
    db(postgres, f"UPDATE emails SET lease_until = now() WHERE id IN ({_ids(ids)})")
    await ingest_lines(owner_engine, _log_lines(smtp_sink, "cleanup"))
    await Outbox(settings, owner_engine).recover_expired()
    waiting = db(postgres, f"SELECT count(*) FROM emails WHERE id IN ({_ids(ids)}) AND state = 'sending' "
                           "AND lease_until IS NULL AND outcome_unknown_since IS NOT NULL")
    await ingest_lines(owner_engine, _log_lines(smtp_sink, "qmgr"))
    await Outbox(settings, owner_engine).recover_expired()
    await drain(settings, owner_engine)
    submitted_before_the_log_was_read_past_the_grace = [smtp_sink.submitted(f"<{i}@{sender}>") for i in ids]
    settings = msgspec.structs.replace(settings, worker_outcome_grace_seconds=1.0)
    await _read_log_past_the_grace(settings, smtp_sink, owner_engine)
    await _settle(settings, owner_engine)

    fetched = [(await client.get(f"/emails/{i}", headers=team.headers)).json() for i in accepted]
    assert 2 <= len(accepted) < len(ids) and unsettled == str(len(ids))
    assert waiting == str(len(ids))
    assert submitted_before_the_log_was_read_past_the_grace == [int(i in accepted) for i in ids]
    assert [smtp_sink.submitted(f"<{i}@{sender}>") for i in ids] == [1] * len(ids)
    assert db(postgres, f"SELECT count(*) FROM emails WHERE id IN ({_ids(ids)}) AND state = 'sent'") == str(len(ids))
    assert all(f["events"][-1]["detail"].get("recovered") is True for f in fetched)


async def test_postfixs_acceptance_of_an_email_the_worker_recorded_sent_writes_nothing(
        client, team, sender, settings, owner_engine, smtp_sink, postgres):
    ids = await _send(client, team, sender, 2)
    await drain(settings, owner_engine)
    before = db(postgres, f"SELECT string_agg(xmin::text, ',' ORDER BY id) FROM emails WHERE id IN ({_ids(ids)})")
    applied = await ingest_lines(owner_engine, _log_lines(smtp_sink, "cleanup", "qmgr"))
    after = db(postgres, f"SELECT string_agg(xmin::text, ',' ORDER BY id) FROM emails WHERE id IN ({_ids(ids)})")
    assert applied == 0 and after == before


async def _entries(lines: list[str], then: asyncio.Event | None = None) -> AsyncIterator[JournalEntry]:
    for n, line in enumerate(lines):
        yield JournalEntry(line, f"s=test;i={n}")
    if then is not None:
        await then.wait()


def _submitted_on(postgres, ids: list[str], host: str) -> None:
    """As if the worker of the mail host `host` had handed these emails to its Postfix (a host of the test's own,
    so that its log position is the test's alone)."""
    db(postgres, f"UPDATE emails SET submitted_on = '{host}' WHERE id IN ({_ids(ids)})")


def _delivery(queue_id: str, to: str) -> str:
    return (f"{time.strftime('%Y-%m-%dT%H:%M:%S+00:00', time.gmtime())} mail postfix/smtp[4200]: {queue_id}: "
            f"to=<{to}>, relay=mx.example.org[203.0.113.25]:25, delay=1.2, delays=0.05/0.01/0.6/0.54, dsn=2.0.0, "
            "status=sent (250 2.0.0 OK)")


async def test_the_log_follower_applies_the_lines_of_its_window_in_one_transaction_and_then_saves_the_cursor(
        client, team, sender, settings, owner_engine, smtp_sink, postgres):
    ids = await _send(client, team, sender, 3)
    await drain(settings, owner_engine)
    host = f"batch-{uuid.uuid4().hex[:8]}"
    _submitted_on(postgres, ids, host)
    rows = db(postgres, f"SELECT queue_id, recipients[1] FROM emails WHERE id IN ({_ids(ids)})").splitlines()
    lines = [*_log_lines(smtp_sink, "cleanup", "qmgr"), *(_delivery(*row.split("|")) for row in rows)]
    saved: list[tuple[str, str]] = []

    def committed(cursor: str) -> None:  # what the journal reader does: write the cursor file
        saved.append((cursor, db(postgres, f"SELECT count(*) FROM email_events WHERE email_id IN ({_ids(ids)}) "
                                           "AND type = 'delivered'")))

    applied = await follow(owner_engine, _entries(lines), mail_host=host, batch_seconds=5.0, committed=committed)
    writers = db(postgres, f"SELECT string_agg(DISTINCT xmin::text, ',') FROM email_events "
                           f"WHERE email_id IN ({_ids(ids)}) AND type = 'delivered'")
    position = db(postgres, f"SELECT xmin FROM postfix_log_positions WHERE mail_host = '{host}'")
    assert applied == 3 and saved == [(f"s=test;i={len(lines) - 1}", "3")]
    assert "," not in writers and position == writers


async def test_the_log_follower_applies_a_window_once_it_has_passed_while_the_log_goes_on(
        client, team, sender, settings, owner_engine, smtp_sink, postgres):
    ids = await _send(client, team, sender, 1)
    await drain(settings, owner_engine)
    queue_id, to = db(postgres, f"SELECT queue_id, recipients[1] FROM emails WHERE id = '{ids[0]}'").split("|")
    saved: list[str] = []
    more = asyncio.Event()
    host = f"window-{uuid.uuid4().hex[:8]}"
    _submitted_on(postgres, ids, host)
    following = asyncio.create_task(follow(owner_engine, _entries([_delivery(queue_id, to)], then=more),
                                           mail_host=host, batch_seconds=0.2,
                                           committed=saved.append))
    try:
        await _wait(lambda: saved != [], timeout=10)
        last_event = db(postgres, f"SELECT last_event FROM emails WHERE id = '{ids[0]}'")
    finally:
        more.set()
        await following
    assert saved == ["s=test;i=0"] and last_event == "delivered"


async def test_the_log_follower_saves_no_cursor_for_lines_whose_transaction_failed(settings, postgres):
    # A role that may write none of the tables: the batch's transaction fails, though the database answers.
    refused = create_async_engine(postgres.url("postyard_dovecot"))
    saved: list[str] = []
    lines = [f"{time.strftime('%Y-%m-%dT%H:%M:%S+00:00', time.gmtime())} mail postfix/cleanup[1]: 4XyZabc1: "
             f"message-id=<{uuid.uuid4()}@example.test>"]
    try:
        with pytest.raises(DBAPIError):
            await follow(refused, _entries(lines), mail_host="refused", committed=saved.append)
    finally:
        await refused.dispose()
    assert saved == []


async def test_an_email_sent_and_then_delivered_stays_in_its_page(
        client, team, sender, settings, owner_engine, smtp_sink, postgres):
    """A full batch, settled together, packs its rows into pages; the room `emails` pages keep (fillfactor 70,
    migration 0013) takes the log follower's update of each email on the page it was settled on, where pages
    filled whole would not. Each delivery comes in a window of its own, as remote servers answer apart: within one
    transaction a page's room holds a new version of only a few of its rows, so one window for the whole batch
    moved some of them whatever the fillfactor, unless earlier tests had left the batch spread over roomier pages."""
    ids = await _send(client, team, sender, settings.worker_batch_size)
    await drain(settings, owner_engine)

    def pages() -> str:
        return db(postgres, f"SELECT string_agg((ctid::text::point)[0]::text, ',' ORDER BY id) FROM emails "
                            f"WHERE id IN ({_ids(ids)})")

    sent = pages()
    rows = db(postgres, f"SELECT queue_id, recipients[1] FROM emails WHERE id IN ({_ids(ids)})").splitlines()
    for row in rows:
        assert await ingest_lines(owner_engine, [_delivery(*row.split("|"))]) == 1
    assert db(postgres, f"SELECT count(*) FROM emails WHERE id IN ({_ids(ids)}) AND last_event = 'delivered'"
              ) == str(len(ids))
    assert pages() == sent


async def test_the_log_follower_applies_many_emails_lines_with_as_many_statements_as_one_emails(
        client, team, sender, settings, owner_engine, smtp_sink, postgres):
    statements: list[str] = []

    def count(_conn, _cursor, statement, *_args) -> None:
        statements.append(statement)

    async def statements_to_apply(emails: int) -> int:
        ids = await _send(client, team, sender, emails)
        smtp_sink.reset()
        await drain(settings, owner_engine)
        rows = db(postgres, f"SELECT queue_id, recipients[1] FROM emails WHERE id IN ({_ids(ids)})").splitlines()
        lines = [*_log_lines(smtp_sink, "cleanup", "qmgr"), *(_delivery(*row.split("|")) for row in rows)]
        statements.clear()
        event.listen(owner_engine.sync_engine, "before_cursor_execute", count)
        try:
            applied = await ingest_lines(owner_engine, lines)
        finally:
            event.remove(owner_engine.sync_engine, "before_cursor_execute", count)
        assert applied == emails
        assert db(postgres, f"SELECT count(*) FROM emails WHERE id IN ({_ids(ids)}) AND last_event = 'delivered'"
                  ) == str(emails)
        return len(statements)

    assert await statements_to_apply(20) == await statements_to_apply(1)


async def test_a_delivery_logged_twice_in_one_window_is_recorded_once(
        client, team, sender, settings, owner_engine, smtp_sink, postgres):
    ids = await _send(client, team, sender, 1)
    await drain(settings, owner_engine)
    queue_id, to = db(postgres, f"SELECT queue_id, recipients[1] FROM emails WHERE id = '{ids[0]}'").split("|")
    await ingest_lines(owner_engine, [_delivery(queue_id, to), _delivery(queue_id, to)])
    await ingest_lines(owner_engine, [_delivery(queue_id, to)])
    assert db(postgres, f"SELECT count(*) FROM email_events WHERE email_id = '{ids[0]}' AND type = 'delivered'") == "1"
