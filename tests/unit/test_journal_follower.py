"""The Postfix journal follower's journalctl command and its reading of journal entries."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.domain.events.postfix_log import DELIVERY_AGENTS, Delivery, parse_line
from app.mailhost.log_follower import (
    JOURNAL_COMMAND,
    JOURNAL_FIELDS,
    POSTFIX_IDENTIFIERS,
    journal_command,
    journal_line,
)


def test_the_first_start_reads_the_whole_journal(tmp_path: Path):
    assert journal_command(tmp_path / "cursor", follow=False) == list(JOURNAL_COMMAND)
    assert journal_command(tmp_path / "cursor", follow=True) == [*JOURNAL_COMMAND, "--follow", "--lines=all"]


@pytest.mark.parametrize("follow", [False, True])
def test_a_restart_resumes_after_the_saved_cursor(tmp_path: Path, follow: bool):
    (tmp_path / "cursor").write_text("s=abc;i=42\n")
    command = journal_command(tmp_path / "cursor", follow)
    assert command[-1] == "--after-cursor=s=abc;i=42" and ("--follow" in command) == follow


def test_following_resumes_after_the_last_entry_read_rather_than_the_last_saved(tmp_path: Path):
    (tmp_path / "cursor").write_text("s=abc;i=42\n")
    assert journal_command(tmp_path / "cursor", True, after="s=abc;i=99")[-1] == "--after-cursor=s=abc;i=99"


def test_a_json_entry_reads_as_the_syslog_line_the_parser_knows():
    entry = {"SYSLOG_IDENTIFIER": "postfix/smtp", "SYSLOG_PID": "23875", "__CURSOR": "s=1",
             "MESSAGE": "F23242704C1: to=<inbox@remote.test>, relay=mx.remote.test[10.77.2.2]:25, delay=0.45, "
                        "delays=0.08/0.25/0.09/0.03, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 5B6931C68EA)"}
    record = parse_line(journal_line(entry))
    assert isinstance(record, Delivery) and (record.queue_id, record.status) == ("F23242704C1", "sent")


def test_a_message_that_is_not_utf8_still_reads():
    entry = {"SYSLOG_IDENTIFIER": "postfix/cleanup", "_PID": "7", "MESSAGE": list(b"ABCDEF123: message-id=<\xff@x>")}
    assert journal_line(entry) == "postfix/cleanup[7]: ABCDEF123: message-id=<\ufffd@x>"


def _logging_names(master_cf: str, programs: set[str]) -> set[str]:
    """The journal identifier (`syslog_name/program`) of each master.cf service running one of the programs."""
    services: list[list[str]] = []  # name, program, syslog_name
    for line in master_cf.splitlines():
        fields = line.split()
        if not fields or line.startswith(("#", "{%")):
            continue
        if not line[0].isspace():
            services.append([fields[0], fields[7] if len(fields) > 7 else "", "postfix"])
        elif services and fields[0] == "-o" and fields[1].startswith("syslog_name="):
            services[-1][2] = fields[1].split("=", 1)[1].replace("$service_name", services[-1][0])
    return {f"{syslog_name}/{program}" for _, program, syslog_name in services if program in programs}


def test_the_journal_is_read_for_every_postfix_process_whose_lines_become_records():
    master_cf = (Path(__file__).parents[2] / "templates" / "postfix" / "master.cf.j2").read_text()
    programs = {"cleanup", "qmgr", *DELIVERY_AGENTS}
    logging = _logging_names(master_cf, programs)
    assert {"postfix/cleanup", "postfix/qmgr", "postfix/smtp", "postfix/relay/smtp"} <= logging
    assert logging <= set(POSTFIX_IDENTIFIERS)
    assert [f"--identifier={name}" for name in POSTFIX_IDENTIFIERS] == [
        a for a in JOURNAL_COMMAND if a.startswith("--identifier=")]


def test_the_journal_fields_read_give_the_same_line_as_the_whole_entry():
    entry = {"SYSLOG_IDENTIFIER": "postfix/qmgr", "SYSLOG_PID": "901", "_PID": "901", "PRIORITY": "6",
             "_HOSTNAME": "mail", "_SYSTEMD_UNIT": "postfix@-.service", "__CURSOR": "s=1",
             "__REALTIME_TIMESTAMP": "1795291203512301",
             "MESSAGE": "4XyZ0123abcd: from=<bounce+ab@send.d.example.test>, size=900, nrcpt=1 (queue active)"}
    always = ("__CURSOR", "__REALTIME_TIMESTAMP")  # journalctl prints them with any --output-fields
    read = {k: v for k, v in entry.items() if k in JOURNAL_FIELDS or k in always}
    assert f"--output-fields={','.join(JOURNAL_FIELDS)}" in JOURNAL_COMMAND
    assert journal_line(read) == journal_line(entry) and len(read) < len(entry)
