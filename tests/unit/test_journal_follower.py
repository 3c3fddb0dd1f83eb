"""The Postfix journal follower's journalctl command and its reading of journal entries."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.domain.events.postfix_log import Delivery, parse_line
from app.mailhost.log_follower import JOURNAL_COMMAND, journal_command, journal_line


def test_the_first_start_reads_the_whole_journal(tmp_path: Path):
    assert journal_command(tmp_path / "cursor", follow=False) == list(JOURNAL_COMMAND)
    assert journal_command(tmp_path / "cursor", follow=True) == [*JOURNAL_COMMAND, "--follow", "--lines=all"]


@pytest.mark.parametrize("follow", [False, True])
def test_a_restart_resumes_after_the_saved_cursor(tmp_path: Path, follow: bool):
    (tmp_path / "cursor").write_text("s=abc;i=42\n")
    command = journal_command(tmp_path / "cursor", follow)
    assert command[-1] == "--after-cursor=s=abc;i=42" and ("--follow" in command) == follow


def test_a_json_entry_reads_as_the_syslog_line_the_parser_knows():
    entry = {"SYSLOG_IDENTIFIER": "postfix/smtp", "SYSLOG_PID": "23875", "__CURSOR": "s=1",
             "MESSAGE": "F23242704C1: to=<inbox@remote.test>, relay=mx.remote.test[10.77.2.2]:25, delay=0.45, "
                        "delays=0.08/0.25/0.09/0.03, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 5B6931C68EA)"}
    record = parse_line(journal_line(entry))
    assert isinstance(record, Delivery) and (record.queue_id, record.status) == ("F23242704C1", "sent")


def test_a_message_that_is_not_utf8_still_reads():
    entry = {"SYSLOG_IDENTIFIER": "postfix/cleanup", "_PID": "7", "MESSAGE": list(b"ABCDEF123: message-id=<\xff@x>")}
    assert journal_line(entry) == "postfix/cleanup[7]: ABCDEF123: message-id=<\ufffd@x>"
