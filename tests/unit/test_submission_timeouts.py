"""The worker's SMTP timeouts against Postfix's milter timeouts, from the values both are built from; the time
each log line carries, which places the log follower in Postfix's log."""

from __future__ import annotations

from datetime import UTC, datetime

from app.config import Settings
from app.domain.events.postfix_log import MessageIdSeen, logged_at, parse_line
from app.host_layout import (
    MILTER_COMMAND_TIMEOUT,
    MILTER_CONNECT_TIMEOUT,
    MILTER_CONTENT_TIMEOUT,
    postfix_milter_wait,
)
from app.mailhost.log_follower import journal_line
from roles.opendkim import INSTANCES
from tests.unit.test_templates import render

MILTERS = len(INSTANCES)


def test_the_workers_smtp_timeout_outlasts_any_reply_postfix_can_hold_back_for_its_milters():
    settings = Settings()
    assert postfix_milter_wait(MILTERS) >= MILTERS * MILTER_CONTENT_TIMEOUT
    assert postfix_milter_wait(MILTERS) >= MILTERS * (MILTER_CONNECT_TIMEOUT + MILTER_COMMAND_TIMEOUT)
    assert settings.smtp_submission_timeout > postfix_milter_wait(MILTERS)


def test_an_unanswered_data_waits_longer_than_postfix_can_take_to_decide_before_it_is_sent_again():
    assert Settings().worker_outcome_grace_seconds > postfix_milter_wait(MILTERS)


def test_main_cf_sets_postfixs_milter_timeouts_to_the_shared_values():
    settings = dict(line.split(" = ", 1) for line in render("postfix/main.cf.j2").splitlines() if " = " in line)
    assert settings["milter_connect_timeout"] == f"{MILTER_CONNECT_TIMEOUT}s"
    assert settings["milter_command_timeout"] == f"{MILTER_COMMAND_TIMEOUT}s"
    assert settings["milter_content_timeout"] == f"{MILTER_CONTENT_TIMEOUT}s"
    assert settings["milter_default_action"] == "tempfail"


def test_a_journal_entry_reads_with_the_time_it_was_logged():
    entry = {"SYSLOG_IDENTIFIER": "postfix/cleanup", "SYSLOG_PID": "7", "__REALTIME_TIMESTAMP": "1795982400250000",
             "MESSAGE": "ABCDEF123: message-id=<1@example.org>"}
    line = journal_line(entry)
    assert logged_at(line) == datetime(2026, 11, 29, 20, 0, 0, 250000, tzinfo=UTC)
    assert parse_line(line) == MessageIdSeen(queue_id="ABCDEF123", message_id="<1@example.org>")


def test_only_a_leading_time_with_its_offset_places_a_line():
    assert logged_at("2026-11-21T20:00:00+0000 mail postfix/qmgr[9]: A: removed") == datetime(2026, 11, 21, 20,
                                                                                              tzinfo=UTC)
    assert logged_at("2026-11-21T20:00:00 mail postfix/qmgr[9]: A: removed") is None
    assert logged_at("Nov 21 20:00:03 mail postfix/qmgr[9]: A: removed") is None
    assert logged_at("postfix/qmgr[9]: A: removed") is None
