"""The outbox worker: submits to the SMTP server standing in for Postfix, records queue ids, retries,
survives SIGKILL, and never submits again an email whose DATA went unanswered until Postfix's log shows its fate."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import msgspec
import pytest
from conftest import TeamKey, verified_domain
from test_emails import message
from test_operators import _admin

from app.cli import create_team
from app.domain.emails.outbox import Outbox
from app.domain.emails.submission import Submitter
from app.domain.events.ingest import follow, ingest_lines
from app.host_layout import mail_host_name


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


# A worker idle this long before its poll: woken within WOKEN_WITHIN, it was woken by the notification. The
# margin is for a loaded machine (a CI run saw 7 to 10 s). The first email may come before the worker listens,
# and go out by the poll.
IDLE_POLL_SECONDS = 120
WOKEN_WITHIN = 30.0
FIRST_WITHIN = IDLE_POLL_SECONDS + WOKEN_WITHIN


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
    stopped = asyncio.Event()

    async def postfix_log() -> AsyncIterator[str]:  # what Postfix logs, as it logs it (journalctl --follow)
        read = 0
        while not stopped.is_set():
            with smtp_sink.lock:
                lines = smtp_sink.log_lines[read:]
            read += len(lines)
            for line in lines:
                yield line
            await asyncio.sleep(0.05)

    # The log follower of the mail host, and the worker restarted with a second one beside it: the emails the
    # dead worker held go out again once the log shows Postfix never took them, and one a slow worker handed
    # over after its lease had run out is settled by the log too.
    following = asyncio.create_task(follow(owner_engine, postfix_log(), idle_seconds=0.2))
    impatient = {**env, "POSTYARD_WORKER_OUTCOME_GRACE_SECONDS": "0.5"}
    workers = [_start_worker(impatient), _start_worker(impatient)]
    try:
        await _wait(lambda: len(delivered()) == total)
        await _wait(lambda: db(postgres, f"SELECT count(*) FROM emails WHERE team_id = '{team.team_id}' "
                                         "AND state = 'sent'") == str(total))
    finally:
        for worker in workers:
            worker.terminate()
            worker.wait(10)
        stopped.set()
        await following
    counts = delivered()
    assert killed_at < total
    assert set(counts) == wanted and max(counts.values()) == 1


async def _die_after_postfix_accepted(postgres, settings, email_id: str, submit: bool) -> None:
    """What a worker killed between Postfix's 250 and its own commit leaves behind."""
    row = db(postgres, f"SELECT envelope_from, array_to_string(recipients, ','), encode(mime, 'hex') FROM emails "
                       f"WHERE id = '{email_id}'").split("|")
    db(postgres, f"UPDATE emails SET state = 'sending', attempts = 1, lease_until = now(), "
                 f"submitted_on = '{mail_host_name()}' WHERE id = '{email_id}'")
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


async def test_an_email_whose_worker_died_waits_for_the_log_and_is_submitted_again_once_it_shows_nothing(
        client, team, sender, settings, owner_engine, smtp_sink, postgres):
    settings = _impatient(settings)
    email_id = (await client.post("/emails", json=message(sender), headers=team.headers)).json()["id"]
    await _die_after_postfix_accepted(postgres, settings, email_id, submit=False)
    await _settle(settings, owner_engine)  # the database was back before the log follower had read anything
    waiting = db(postgres, f"SELECT state, lease_until IS NULL, outcome_unknown_since IS NOT NULL "
                           f"FROM emails WHERE id = '{email_id}'")
    submitted_while_waiting = smtp_sink.submitted(f"<{email_id}@{sender}>")
    await _read_log_past_the_grace(settings, smtp_sink, owner_engine)
    await _settle(settings, owner_engine)
    assert (waiting, submitted_while_waiting) == ("sending|t|t", 0)
    assert len(smtp_sink.for_message_id(f"<{email_id}@{sender}>")) == 1


async def test_an_email_whose_lease_ended_long_ago_is_counted_once_when_recovery_settles_it(
        client, team, sender, settings, owner_engine, postgres):
    outbox = Outbox(settings, owner_engine)
    await outbox.recover_expired()  # whatever earlier tests left
    email_id = (await client.post("/emails", json=message(sender), headers=team.headers)).json()["id"]
    db(postgres, f"UPDATE emails SET state = 'sending', attempts = 1, lease_until = now() - interval '1 hour', "
                 f"submitted_on = '{mail_host_name()}' WHERE id = '{email_id}'")
    db(postgres, f"INSERT INTO postfix_log_positions (mail_host, logged_through) VALUES ('{mail_host_name()}', now()) "
                 f"ON CONFLICT (mail_host) DO UPDATE SET logged_through = now()")
    assert await outbox.recover_expired() == 1  # expired, then found unsent in the log read past it
    settled = db(postgres, f"SELECT state, outcome_unknown_since IS NULL FROM emails WHERE id = '{email_id}'")
    assert settled == "queued|t"


async def test_a_test_email_whose_worker_died_goes_back_to_the_queue_at_once(
        client, settings, owner_engine, smtp_sink, postgres):
    team_id, token = await create_team(settings, "test-mode-crash", mode="test")
    test_team = TeamKey(team_id, token)
    domain = await verified_domain(client, test_team, postgres)
    email_id = (await client.post("/emails", json=message(domain["name"]), headers=test_team.headers)).json()["id"]
    await _die_after_postfix_accepted(postgres, settings, email_id, submit=False)
    await _settle(settings, owner_engine)  # a test email never reaches Postfix: nothing for the log to show
    assert db(postgres, f"SELECT state, last_event FROM emails WHERE id = '{email_id}'") == "sent|sent"


async def test_a_waiting_worker_is_woken_by_a_new_email_rather_than_its_poll(client, team, sender, env, smtp_sink):
    worker = _start_worker({**env, "POSTYARD_WORKER_POLL_INTERVAL": str(IDLE_POLL_SECONDS)})
    try:
        first = (await client.post("/emails", json=message(sender), headers=team.headers)).json()["id"]
        await _wait(lambda: smtp_sink.for_message_id(f"<{first}@{sender}>") != [], timeout=FIRST_WITHIN)
        await asyncio.sleep(0.5)  # the worker is idle now, waiting for its poll
        started = time.monotonic()
        second = (await client.post("/emails", json=message(sender), headers=team.headers)).json()["id"]
        await _wait(lambda: smtp_sink.for_message_id(f"<{second}@{sender}>") != [], timeout=WOKEN_WITHIN)
    finally:
        worker.terminate()
        worker.wait(10)
    assert time.monotonic() - started < WOKEN_WITHIN


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


# What became of a claim whose lease lapsed while its worker was busy: put back in the queue by the log, left
# to the log by recovery (no lease), or claimed again by another worker after that (a later attempt).
LAPSED = {
    "queued again": ("state = 'queued', lease_until = NULL", "queued"),
    "left to the log": ("lease_until = NULL, outcome_unknown_since = now()", "sending"),
    "claimed again": ("attempts = attempts + 1, lease_until = now() + interval '1 hour'", "sending"),
}


@pytest.mark.parametrize("lapsed", list(LAPSED))
async def test_a_long_batch_renews_its_leases_and_skips_a_message_it_no_longer_holds(
        lapsed, client, team, sender, settings, owner_engine, smtp_sink, postgres):
    batch = [message(sender) for _ in range(3)]
    ids = [e["id"] for e in (await client.post("/emails/batch", json=batch, headers=team.headers)).json()["data"]]
    smtp_sink.data_delay = 0.6 * settings.worker_lease_seconds  # each transaction outlasts half the lease
    submitter = Submitter(settings)
    draining = asyncio.create_task(Outbox(settings, owner_engine).drain_once(submitter))
    await _wait(lambda: db(postgres, f"SELECT count(*) FROM emails WHERE id = '{ids[0]}' AND state = 'sending'")
                == "1")
    change, state = LAPSED[lapsed]
    db(postgres, f"UPDATE emails SET {change} WHERE id = '{ids[2]}'")
    await draining
    await submitter.close()
    sent = [len(smtp_sink.for_message_id(f"<{i}@{sender}>")) for i in ids]
    states = db(postgres, f"SELECT string_agg(state, ',' ORDER BY array_position(ARRAY['{ids[0]}', '{ids[1]}', "
                          f"'{ids[2]}']::uuid[], id)) FROM emails WHERE id IN ('{ids[0]}', '{ids[1]}', '{ids[2]}')")
    assert sent == [1, 1, 0] and states == f"sent,sent,{state}"


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


# Postfix's answer to DATA lost: the sink holds its reply past the worker's timeout, or drops the connection.
STALLS = {"stalled": {"data_delay": 1.5}, "dropped": {"drop_after_data": True}}
MILTER_TEMPFAIL = "451 4.7.1 Service unavailable - try again later"


def _impatient(settings):
    """The worker's settings with a short SMTP timeout and outcome grace, for a test's pace."""
    return msgspec.structs.replace(settings, smtp_submission_timeout=0.5, worker_outcome_grace_seconds=1.0)


def _stall(smtp_sink, how: str, accept: bool) -> None:
    for name, value in STALLS[how].items():
        setattr(smtp_sink, name, value)
    smtp_sink.data_reply = None if accept else MILTER_TEMPFAIL


async def _follow_log(smtp_sink, owner_engine) -> None:
    """What the log follower does on the mail host: apply every line Postfix logged so far."""
    with smtp_sink.lock:
        lines = list(smtp_sink.log_lines)
    await ingest_lines(owner_engine, lines)


async def _settle(settings, owner_engine) -> None:
    """One round of the worker: recovery, then a drain."""
    await Outbox(settings, owner_engine).recover_expired()
    await drain(settings, owner_engine)


async def _read_log_past_the_grace(settings, smtp_sink, owner_engine) -> None:
    """The log follower reads a line Postfix logged more than the outcome grace from now (nothing about any email)."""
    await asyncio.sleep(settings.worker_outcome_grace_seconds + 0.5)
    smtp_sink.log("postfix/anvil[4301]: statistics: max connection rate 1/60s for (smtp:127.0.0.1) at now")
    await _follow_log(smtp_sink, owner_engine)


@pytest.mark.parametrize("how", list(STALLS))
async def test_an_email_whose_data_went_unanswered_is_not_submitted_again_while_the_log_has_not_shown_its_fate(
        how, client, team, sender, settings, owner_engine, smtp_sink, postgres):
    settings = _impatient(settings)
    email_id = (await client.post("/emails", json=message(sender), headers=team.headers)).json()["id"]
    _stall(smtp_sink, how, accept=False)
    await drain(settings, owner_engine)
    smtp_sink.reset()
    await _follow_log(smtp_sink, owner_engine)  # the follower has read no further than the message's data
    await asyncio.sleep(settings.worker_outcome_grace_seconds + 0.5)
    await _settle(settings, owner_engine)
    state = db(postgres, f"SELECT state, lease_until IS NULL, outcome_unknown_since IS NOT NULL, last_error "
                         f"FROM emails WHERE id = '{email_id}'")
    assert smtp_sink.submitted(f"<{email_id}@{sender}>") == 1
    assert state.startswith("sending|t|t|no reply to DATA")


@pytest.mark.parametrize("how", list(STALLS))
async def test_an_email_whose_data_went_unanswered_is_submitted_again_once_the_log_shows_postfix_did_not_accept_it(
        how, client, team, sender, settings, owner_engine, smtp_sink, postgres):
    settings = _impatient(settings)
    email_id = (await client.post("/emails", json=message(sender), headers=team.headers)).json()["id"]
    _stall(smtp_sink, how, accept=False)
    await drain(settings, owner_engine)
    await asyncio.sleep(max(smtp_sink.data_delay, settings.worker_outcome_grace_seconds) + 0.5)
    smtp_sink.reset()
    smtp_sink.log("postfix/internal/smtpd[4100]: disconnect from localhost[127.0.0.1]")  # a later line
    await _follow_log(smtp_sink, owner_engine)
    await _settle(settings, owner_engine)
    fetched = (await client.get(f"/emails/{email_id}", headers=team.headers)).json()
    assert smtp_sink.submitted(f"<{email_id}@{sender}>") == 2
    assert len(smtp_sink.for_message_id(f"<{email_id}@{sender}>")) == 1
    assert fetched["last_event"] == "sent"
    assert db(postgres, f"SELECT attempts FROM emails WHERE id = '{email_id}'") == "2"


@pytest.mark.parametrize("how", list(STALLS))
async def test_an_email_whose_data_went_unanswered_is_sent_and_delivered_when_the_log_shows_postfix_accepted_it(
        how, client, team, sender, settings, owner_engine, smtp_sink, postgres):
    settings = _impatient(settings)
    email_id = (await client.post("/emails", json=message(sender), headers=team.headers)).json()["id"]
    _stall(smtp_sink, how, accept=True)
    await drain(settings, owner_engine)
    await _wait(lambda: smtp_sink.for_message_id(f"<{email_id}@{sender}>") != [])  # Postfix queued it in the end
    smtp_sink.reset()
    await _follow_log(smtp_sink, owner_engine)
    await _settle(settings, owner_engine)
    queue_id = smtp_sink.for_message_id(f"<{email_id}@{sender}>")[0].queue_id
    to = db(postgres, f"SELECT recipients[1] FROM emails WHERE id = '{email_id}'")
    smtp_sink.log(f"postfix/smtp[4200]: {queue_id}: to=<{to}>, relay=mx.example.org[203.0.113.25]:25, delay=1.2, "
                  "delays=0.05/0.01/0.6/0.54, dsn=2.0.0, status=sent (250 2.0.0 OK)")
    await _follow_log(smtp_sink, owner_engine)
    await asyncio.sleep(settings.worker_outcome_grace_seconds + 0.5)
    await _settle(settings, owner_engine)
    fetched = (await client.get(f"/emails/{email_id}", headers=team.headers)).json()
    assert smtp_sink.submitted(f"<{email_id}@{sender}>") == 1
    assert [(e["type"], e["detail"].get("queue_id")) for e in fetched["events"]][-2:] == [
        ("sent", queue_id), ("delivered", None)]
    assert fetched["last_event"] == "delivered"
    assert db(postgres, f"SELECT state, queue_id FROM emails WHERE id = '{email_id}'") == f"sent|{queue_id}"


async def test_a_worker_that_died_after_postfix_logged_the_message_id_leaves_it_to_the_log(
        client, team, sender, settings, owner_engine, smtp_sink, postgres):
    settings = _impatient(settings)
    email_id = (await client.post("/emails", json=message(sender), headers=team.headers)).json()["id"]
    await _die_after_postfix_accepted(postgres, settings, email_id, submit=False)
    smtp_sink.log(f"postfix/cleanup[4300]: 4XyZabcDEF0123: message-id=<{email_id}@{sender}>")  # then nothing
    await _follow_log(smtp_sink, owner_engine)
    await _settle(settings, owner_engine)
    waiting = db(postgres, f"SELECT state, outcome_unknown_since IS NOT NULL FROM emails WHERE id = '{email_id}'")
    await _read_log_past_the_grace(settings, smtp_sink, owner_engine)
    await _settle(settings, owner_engine)
    assert waiting == "sending|t"
    assert smtp_sink.submitted(f"<{email_id}@{sender}>") == 1
    assert db(postgres, f"SELECT state FROM emails WHERE id = '{email_id}'") == "sent"


async def test_an_email_queued_again_whose_acceptance_is_logged_late_is_not_claimed(
        client, team, sender, settings, owner_engine, smtp_sink, postgres):
    email_id = (await client.post("/emails", json=message(sender), headers=team.headers)).json()["id"]
    # Queued again after this mail host's worker had handed it to its Postfix (its lease ran out first).
    db(postgres, f"UPDATE emails SET submitted_on = '{mail_host_name()}' WHERE id = '{email_id}'")
    envelope_from = db(postgres, f"SELECT envelope_from FROM emails WHERE id = '{email_id}'")
    smtp_sink.log(f"postfix/cleanup[4400]: 5XyZabcDEF0123: message-id=<{email_id}@{sender}>")
    smtp_sink.log(f"postfix/qmgr[901]: 5XyZabcDEF0123: from=<{envelope_from}>, size=900, nrcpt=1 (queue active)")
    await _follow_log(smtp_sink, owner_engine)
    await _settle(settings, owner_engine)
    fetched = (await client.get(f"/emails/{email_id}", headers=team.headers)).json()
    assert smtp_sink.submitted(f"<{email_id}@{sender}>") == 0
    assert fetched["last_event"] == "sent" and fetched["events"][-1]["detail"]["queue_id"] == "5XyZabcDEF0123"


async def test_the_log_follower_moves_its_position_on_while_postfixs_log_is_quiet(owner_engine, postgres):
    host, quiet, logged = f"quiet-{uuid.uuid4().hex[:8]}", asyncio.Event(), datetime.now(UTC).isoformat()

    async def lines():
        yield f"{logged} mail postfix/anvil[1]: statistics: max cache size 1 at now"
        await quiet.wait()

    def position() -> str:
        return db(postgres, f"SELECT logged_through FROM postfix_log_positions WHERE mail_host = '{host}'")

    following = asyncio.create_task(follow(owner_engine, lines(), mail_host=host, idle_seconds=0.2))
    await _wait(lambda: position() != "", timeout=10)
    first = position()
    await _wait(lambda: position() != first, timeout=10)
    quiet.set()
    await following
    assert db(postgres, f"SELECT logged_through > '{logged}' FROM postfix_log_positions WHERE mail_host = '{host}'"
              ) == "t"


async def test_an_operator_queues_again_the_unknown_outcomes_of_a_mail_host_lost_for_good(
        client, team, sender, env, settings, owner_engine, smtp_sink, postgres):
    lost = f"lost-{uuid.uuid4().hex[:6]}.test"
    waiting, leased, accepted = [
        (await client.post("/emails", json=message(sender), headers=team.headers)).json()["id"] for _ in range(3)]
    db(postgres, f"UPDATE emails SET state = 'sending', attempts = 1, submitted_on = '{lost}', "
                 f"lease_until = NULL, outcome_unknown_since = now() - interval '1 hour' WHERE id = '{waiting}'")
    db(postgres, f"UPDATE emails SET state = 'sending', attempts = 1, submitted_on = '{lost}', "
                 f"lease_until = now() + interval '1 hour' WHERE id = '{leased}'")
    db(postgres, f"UPDATE emails SET state = 'sending', attempts = 1, submitted_on = '{lost}', mta_accepted = true, "
                 f"lease_until = NULL, outcome_unknown_since = now() - interval '1 hour' WHERE id = '{accepted}'")
    db(postgres, f"INSERT INTO postfix_log_positions (mail_host, logged_through) VALUES ('{lost}', now())")
    refused = _admin(env, "release-mail-host", lost)  # its log follower wrote just now: not lost
    db(postgres, f"UPDATE postfix_log_positions SET updated_at = now() - interval '1 hour' WHERE mail_host = '{lost}'")
    released = _admin(env, "release-mail-host", lost)
    assert refused.returncode == 1 and "is not lost" in refused.stderr
    states = ",".join(db(postgres, f"SELECT state FROM emails WHERE id = '{email_id}'")
                      for email_id in (waiting, leased, accepted))
    assert released.returncode == 0, released.stderr
    assert f"{lost}: 1 email queued again" in released.stdout and f"{lost}: 1 still leased" in released.stdout
    assert states == "queued,sending,sending"  # the accepted one is the follower's to settle as sent
    await drain(settings, owner_engine)
    assert len(smtp_sink.for_message_id(f"<{waiting}@{sender}>")) == 1
