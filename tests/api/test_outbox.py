"""The outbox worker: submits to the SMTP server standing in for Postfix, records queue ids, retries,
survives SIGKILL."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter

import msgspec
from conftest import TeamKey, verified_domain
from test_emails import message

from app.cli import create_team
from app.domain.emails.outbox import Outbox
from app.domain.emails.submission import Submitter
from app.domain.events.ingest import ingest_lines


async def drain(settings, engine) -> None:
    """Run the outbox until nothing is due."""
    outbox, submitter = Outbox(settings, engine), Submitter(settings)
    try:
        while await outbox.drain_once(submitter):
            pass
    finally:
        await submitter.close()


def db(postgres, sql: str) -> str:
    return postgres.psql(sql, user="postyard_owner", database="postyard").strip()


async def test_the_worker_submits_over_smtp_and_records_the_postfix_queue_id(
        client, team, sender, settings, owner_engine, smtp_sink, postgres):
    email_id = (await client.post("/emails", json=message(sender, bcc=["hidden@example.org"]),
                                  headers=team.headers)).json()["id"]
    await drain(settings, owner_engine)
    received = smtp_sink.for_message_id(f"<{email_id}@{sender}>")
    fetched = (await client.get(f"/emails/{email_id}", headers=team.headers)).json()
    queue_id = db(postgres, f"SELECT queue_id FROM emails WHERE id = '{email_id}'")
    assert len(received) == 1 and received[0].queue_id == queue_id
    assert received[0].mail_from == f"bounce+{uuid.UUID(email_id).hex}@send.{sender}"
    assert "hidden@example.org" in received[0].rcpt_tos and "Bcc" not in received[0].message
    assert fetched["last_event"] == "sent" and fetched["events"][-1]["detail"]["queue_id"] == queue_id


async def test_a_transient_refusal_is_retried_later(client, team, sender, settings, owner_engine, smtp_sink,
                                                    postgres):
    rcpt = f"busy{uuid.uuid4().hex[:6]}@example.org"
    smtp_sink.refuse[rcpt] = "451 4.3.0 Try again later"
    email_id = (await client.post("/emails", json=message(sender, to=[rcpt]), headers=team.headers)).json()["id"]
    await drain(settings, owner_engine)
    state = db(postgres, f"SELECT state, attempts, next_attempt_at > now() FROM emails WHERE id = '{email_id}'")
    assert state == "queued|1|t"
    smtp_sink.refuse.clear()
    db(postgres, f"UPDATE emails SET next_attempt_at = now() WHERE id = '{email_id}'")
    await drain(settings, owner_engine)
    assert db(postgres, f"SELECT state FROM emails WHERE id = '{email_id}'") == "sent"


async def test_a_permanent_refusal_marks_the_email_failed(client, team, sender, settings, owner_engine, smtp_sink):
    rcpt = f"gone{uuid.uuid4().hex[:6]}@example.org"
    smtp_sink.refuse[rcpt] = "550 5.1.1 User unknown"
    email_id = (await client.post("/emails", json=message(sender, to=[rcpt]), headers=team.headers)).json()["id"]
    await drain(settings, owner_engine)
    fetched = (await client.get(f"/emails/{email_id}", headers=team.headers)).json()
    assert fetched["last_event"] == "failed" and "550" in fetched["events"][-1]["detail"]["reply"]


async def test_a_test_key_records_the_email_but_delivers_nothing(client, settings, owner_engine, smtp_sink,
                                                                 postgres):
    team_id, token = await create_team(settings, "test-mode", mode="test")
    test_team = TeamKey(team_id, token)
    domain = await verified_domain(client, test_team, postgres)
    email_id = (await client.post("/emails", json=message(domain["name"]), headers=test_team.headers)).json()["id"]
    await drain(settings, owner_engine)
    fetched = (await client.get(f"/emails/{email_id}", headers=test_team.headers)).json()
    assert smtp_sink.for_message_id(f"<{email_id}@{domain['name']}>") == []
    assert fetched["last_event"] == "sent" and fetched["events"][-1]["detail"] == {"test": True}


async def test_a_scheduled_email_is_not_sent_before_its_time(client, team, sender, settings, owner_engine,
                                                             smtp_sink, postgres):
    later = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(time.time() + 3600))
    email_id = (await client.post("/emails", json=message(sender, scheduled_at=later),
                                  headers=team.headers)).json()["id"]
    await drain(settings, owner_engine)
    assert smtp_sink.for_message_id(f"<{email_id}@{sender}>") == []
    db(postgres, f"UPDATE emails SET next_attempt_at = now() WHERE id = '{email_id}'")
    await drain(settings, owner_engine)
    assert len(smtp_sink.for_message_id(f"<{email_id}@{sender}>")) == 1


def _start_worker(env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "import sys; from app.cli import main; sys.exit(main(['worker']))"],
                            env={**os.environ, **env, "POSTYARD_WORKER_CONCURRENCY": "2",
                                 "POSTYARD_WORKER_BATCH_SIZE": "5"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def _wait(predicate, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_a_worker_killed_mid_batch_and_restarted_beside_another_delivers_every_email_exactly_once(
        client, team, sender, env, owner_engine, smtp_sink, postgres):
    total = 60
    batch = [message(sender) for _ in range(total)]
    ids = [e["id"] for e in (await client.post("/emails/batch", json=batch, headers=team.headers)).json()["data"]]
    wanted = {f"<{i}@{sender}>" for i in ids}

    def delivered() -> Counter:
        with smtp_sink.lock:
            return Counter(m.message_id for m in smtp_sink.messages if m.message_id in wanted)

    smtp_sink.data_delay = 0.02  # Postfix's time between receiving the data and answering 250
    worker = _start_worker(env)
    try:
        await _wait(lambda: sum(delivered().values()) >= 15)
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
    killed_at = sum(delivered().values())
    await asyncio.sleep(0.3)  # the sink finishes the transaction the worker died in, as Postfix would
    with smtp_sink.lock:
        lines = list(smtp_sink.log_lines)
    await ingest_lines(owner_engine, lines)  # what the log follower does on the mail host

    workers = [_start_worker(env), _start_worker(env)]  # restarted, and a second one beside it
    try:
        await _wait(lambda: len(delivered()) == total)
        await _wait(lambda: db(postgres, f"SELECT count(*) FROM emails WHERE team_id = '{team.team_id}' "
                                         "AND state = 'sent'") == str(total))
    finally:
        for worker in workers:
            worker.terminate()
            worker.wait(10)
    counts = delivered()
    assert killed_at < total
    assert set(counts) == wanted and max(counts.values()) == 1


async def _die_after_postfix_accepted(postgres, settings, email_id: str, submit: bool) -> None:
    """What a worker killed between Postfix's 250 and its own commit leaves behind."""
    row = db(postgres, f"SELECT envelope_from, array_to_string(recipients, ','), encode(mime, 'hex') FROM emails "
                       f"WHERE id = '{email_id}'").split("|")
    db(postgres, f"UPDATE emails SET state = 'sending', attempts = 1, lease_until = now() - interval '1 second' "
                 f"WHERE id = '{email_id}'")
    if submit:
        submitter = Submitter(settings)
        outcome = await submitter.submit(row[0], row[1].split(","), bytes.fromhex(row[2]))
        await submitter.close()
        assert outcome.accepted


async def test_an_email_postfix_logged_as_queued_is_not_submitted_again_after_a_crash(
        client, team, sender, settings, owner_engine, smtp_sink, postgres):
    email_id = (await client.post("/emails", json=message(sender), headers=team.headers)).json()["id"]
    await _die_after_postfix_accepted(postgres, settings, email_id, submit=True)
    with smtp_sink.lock:
        await ingest_lines(owner_engine, list(smtp_sink.log_lines))
    await Outbox(settings, owner_engine).recover_expired()
    await drain(settings, owner_engine)
    received = smtp_sink.for_message_id(f"<{email_id}@{sender}>")
    fetched = (await client.get(f"/emails/{email_id}", headers=team.headers)).json()
    assert len(received) == 1 and fetched["last_event"] == "sent"
    assert fetched["events"][-1]["detail"] == {"queue_id": received[0].queue_id, "recovered": True}


async def test_an_email_postfix_never_logged_is_submitted_again_after_a_crash(
        client, team, sender, settings, owner_engine, smtp_sink, postgres):
    email_id = (await client.post("/emails", json=message(sender), headers=team.headers)).json()["id"]
    await _die_after_postfix_accepted(postgres, settings, email_id, submit=False)
    await Outbox(settings, owner_engine).recover_expired()
    await drain(settings, owner_engine)
    assert len(smtp_sink.for_message_id(f"<{email_id}@{sender}>")) == 1


async def test_a_waiting_worker_is_woken_by_a_new_email_rather_than_its_poll(client, team, sender, env, smtp_sink):
    worker = _start_worker({**env, "POSTYARD_WORKER_POLL_INTERVAL": "60"})
    try:
        first = (await client.post("/emails", json=message(sender), headers=team.headers)).json()["id"]
        await _wait(lambda: smtp_sink.for_message_id(f"<{first}@{sender}>") != [], timeout=30)
        await asyncio.sleep(0.5)  # the worker is idle now, waiting up to 60 s
        started = time.monotonic()
        second = (await client.post("/emails", json=message(sender), headers=team.headers)).json()["id"]
        await _wait(lambda: smtp_sink.for_message_id(f"<{second}@{sender}>") != [], timeout=30)
    finally:
        worker.terminate()
        worker.wait(10)
    assert time.monotonic() - started < 5


async def test_a_smtp_session_is_renewed_once_it_is_older_than_its_limit(settings, smtp_sink):
    message = b"From: a@example.org\r\nTo: b@example.org\r\nSubject: s\r\n\r\nbody\r\n"
    lasting, renewing = (Submitter(msgspec.structs.replace(settings, smtp_session_max_seconds=limit))
                         for limit in (3600.0, 0.0))
    try:
        for submitter in (lasting, renewing):
            await submitter.submit("a@example.org", ["b@example.org"], message)
            first = submitter._smtp
            await submitter.submit("a@example.org", ["b@example.org"], message)
            assert (submitter._smtp is first) == (submitter is lasting)
    finally:
        await lasting.close()
        await renewing.close()


async def test_a_long_batch_renews_its_leases_and_skips_a_message_it_no_longer_holds(
        client, team, sender, settings, owner_engine, smtp_sink, postgres):
    batch = [message(sender) for _ in range(3)]
    ids = [e["id"] for e in (await client.post("/emails/batch", json=batch, headers=team.headers)).json()["data"]]
    smtp_sink.data_delay = 0.6 * settings.worker_lease_seconds  # each transaction outlasts half the lease
    submitter = Submitter(settings)
    draining = asyncio.create_task(Outbox(settings, owner_engine).drain_once(submitter))
    await _wait(lambda: db(postgres, f"SELECT count(*) FROM emails WHERE id = '{ids[0]}' AND state = 'sending'")
                == "1")
    # As if its lease had lapsed and a recovering worker put it back in the queue.
    db(postgres, f"UPDATE emails SET state = 'queued', lease_until = NULL WHERE id = '{ids[2]}'")
    await draining
    await submitter.close()
    sent = [len(smtp_sink.for_message_id(f"<{i}@{sender}>")) for i in ids]
    states = db(postgres, f"SELECT string_agg(state, ',' ORDER BY array_position(ARRAY['{ids[0]}', '{ids[1]}', "
                          f"'{ids[2]}']::uuid[], id)) FROM emails WHERE id IN ('{ids[0]}', '{ids[1]}', '{ids[2]}')")
    assert sent == [1, 1, 0] and states == "sent,sent,queued"


async def test_an_email_delivered_before_its_worker_recorded_it_sent_stays_delivered(
        client, team, sender, settings, owner_engine, smtp_sink, postgres):
    email_id = (await client.post("/emails", json=message(sender), headers=team.headers)).json()["id"]
    await _die_after_postfix_accepted(postgres, settings, email_id, submit=True)
    queue_id = smtp_sink.for_message_id(f"<{email_id}@{sender}>")[0].queue_id
    to = db(postgres, f"SELECT recipients[1] FROM emails WHERE id = '{email_id}'")
    with smtp_sink.lock:
        lines = list(smtp_sink.log_lines)
    delivered = (f"Nov 21 20:00:03 mail postfix/smtp[12345]: {queue_id}: to=<{to}>, "
                 "relay=mx.example.org[203.0.113.25]:25, delay=1.2, delays=0.05/0.01/0.6/0.54, dsn=2.0.0, "
                 "status=sent (250 2.0.0 OK)")
    await ingest_lines(owner_engine, [*lines, delivered])
    await Outbox(settings, owner_engine).recover_expired()  # the worker's `sent`, recorded late
    fetched = (await client.get(f"/emails/{email_id}", headers=team.headers)).json()
    assert [e["type"] for e in fetched["events"]][-2:] == ["delivered", "sent"]
    assert fetched["last_event"] == "delivered"
