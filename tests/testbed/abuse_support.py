"""What the abuse suite's attacker sends and reads: forged DSN and ARF reports, the operator's commands
on the host, and waits on the mail host's log and the API."""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable
from typing import TypeVar

from tests.testbed.mail_support import MailTestbed

__all__ = ["forged_arf", "forged_dsn", "operator", "wait_for_report_pipe", "wait_until"]

T = TypeVar("T")


def _report(verp: str, report_type: str, machine_part: str, message_id: str, recipient: str) -> str:
    """A multipart/report to the VERP address: a human part, the machine-readable part, the returned headers."""
    boundary = f"report-{int(time.time() * 1000)}"
    return (
        f"From: MAILER-DAEMON@mx.remote.test\r\nTo: {verp}\r\nSubject: Report\r\nMIME-Version: 1.0\r\n"
        f'Content-Type: multipart/report; report-type={report_type}; boundary="{boundary}"\r\n\r\n'
        f"--{boundary}\r\nContent-Type: text/plain\r\n\r\nA report about a message you sent.\r\n\r\n"
        f"--{boundary}\r\n{machine_part}\r\n"
        f"--{boundary}\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"Message-ID: {message_id}\r\nTo: {recipient}\r\nSubject: the original\r\n\r\n"
        f"--{boundary}--\r\n"
    )


def forged_dsn(verp: str, recipient: str, message_id: str) -> str:
    """A delivery status notification saying `recipient` failed permanently (5.1.1)."""
    fields = (
        "Content-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.remote.test\r\n\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        "Diagnostic-Code: smtp; 550 5.1.1 No such user here\r\n"
    )
    return _report(verp, "delivery-status", fields, message_id, recipient)


def forged_arf(verp: str, recipient: str, message_id: str) -> str:
    """An abuse feedback report (RFC 5965) saying `recipient` complained."""
    fields = (
        "Content-Type: message/feedback-report\r\n\r\n"
        f"Feedback-Type: abuse\r\nUser-Agent: forged/1.0\r\nVersion: 1\r\n"
        f"Original-Mail-From: <{verp}>\r\nOriginal-Rcpt-To: <{recipient}>\r\n"
    )
    return _report(verp, "feedback-report", fields, message_id, recipient)


def wait_until(probe: Callable[[], T | None], what: str, timeout: float = 60, every: float = 1) -> T:
    """The first truthy answer of `probe`, polled until `timeout`."""
    deadline = time.monotonic() + timeout
    while not (found := probe()):
        assert time.monotonic() < deadline, f"{what} within {timeout:.0f} s"
        time.sleep(every)
    return found


def wait_for_report_pipe(mail_bed: MailTestbed, queue_id: str, timeout: float = 60) -> str:
    """Postfix's log of one message received on port 25, once the bounce pipe (the app) has taken it."""

    def handed_over() -> str | None:
        log = mail_bed.on_mail_host(f"journalctl -q --no-pager -g {shlex.quote(queue_id)}")
        return log if f"{queue_id}: " in log and "status=" in log else None

    log = wait_until(handed_over, f"the report {queue_id} reached the bounce pipe", timeout)
    assert "relay=postyard-bounce" in log and "status=sent" in log, log
    return log


def operator(mail_bed: MailTestbed, *argv: str) -> str:
    """`postyard-api admin ...` on the host, as the instance's operator runs it over SSH."""
    return mail_bed.on_mail_host(shlex.join(["postyard-api", "admin", *argv]))
