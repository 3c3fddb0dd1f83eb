"""The worker's SMTP submission when the server offers PIPELINING (RFC 2920): MAIL, the RCPTs and DATA in one
write, and the same outcome per email as one command at a time, against a real SMTP server on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field

import msgspec
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP

from app.config import Settings
from app.domain.emails.submission import Outcome, Submitter
from postyard.local_stack.postgres import free_port
from postyard.local_stack.smtp_sink import Sink

SENDER = "bounce+1@send.example.test"
MESSAGE = b"From: a@example.test\r\nTo: b@example.org\r\nSubject: hi\r\nMessage-ID: <1@example.test>\r\n\r\nHello\r\n"


@dataclass
class Server(Sink):
    """The sink, with what it read from each arrival of the client's data, and further misbehaviour on demand:
    a reply to MAIL, a reply to the DATA command itself, or a connection dropped at a RCPT."""

    reads: list[bytes] = field(default_factory=list)
    mail_reply: str | None = None
    data_command_reply: str | None = None
    drop_at_rcpt: bool = False
    stall_at_rcpt: float = 0.0
    close_after_data_command: bool = False

    async def handle_MAIL(self, server, session, envelope, address, mail_options):  # noqa: N802
        if self.mail_reply:
            return self.mail_reply
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 Ok"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        if self.drop_at_rcpt:
            server.transport.abort()
        await asyncio.sleep(self.stall_at_rcpt)
        return await super().handle_RCPT(server, session, envelope, address, rcpt_options)

    def transaction_reads(self) -> list[bytes]:
        """The reads from the first MAIL on."""
        start = next(i for i, read in enumerate(self.reads) if read.startswith(b"MAIL"))
        return self.reads[start:]


class _Session(SMTP):
    def data_received(self, data: bytes) -> None:
        self.event_handler.reads.append(data)
        super().data_received(data)

    async def smtp_DATA(self, arg: str) -> None:  # noqa: N802
        if self.event_handler.close_after_data_command:  # as a server past its error limit: 421, then closed
            await self.push("421 4.7.0 Error: too many errors")
            self.transport.close()
            return
        if self.event_handler.data_command_reply and self.envelope.rcpt_tos:
            await self.push(self.event_handler.data_command_reply)
            return
        await super().smtp_DATA(arg)


class _Controller(Controller):
    def factory(self) -> SMTP:
        return _Session(self.handler, **self.SMTP_kwargs)


@pytest.fixture
def server() -> Iterator[tuple[Server, int]]:
    handler, port = Server(), free_port()
    controller = _Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    yield handler, port
    controller.stop()


@pytest.fixture
async def submitter(server: tuple[Server, int], settings: Settings) -> AsyncIterator[Submitter]:
    submitter = Submitter(msgspec.structs.replace(settings, smtp_submission_port=server[1],
                                                  smtp_submission_timeout=1.0))
    yield submitter
    await submitter.close()


async def _accepted_afterwards(submitter: Submitter, handler: Server) -> None:
    """The session was left clean: the next email goes through with its own envelope alone."""
    handler.mail_reply = handler.data_command_reply = None
    handler.drop_at_rcpt, handler.stall_at_rcpt, handler.close_after_data_command = False, 0.0, False
    handler.refuse.clear()
    outcome = await submitter.submit("bounce+2@send.example.test", ["next@example.org"], MESSAGE)
    assert outcome.accepted, outcome
    assert (handler.messages[-1].mail_from, handler.messages[-1].rcpt_tos) == (
        "bounce+2@send.example.test", ["next@example.org"])


async def test_mail_the_recipients_and_data_go_in_one_write_and_the_content_in_a_second(submitter, server):
    handler, _ = server
    recipients = ["one@example.org", "two@example.org", "three@example.org"]
    outcome = await submitter.submit(SENDER, recipients, MESSAGE)
    assert outcome.accepted and outcome.queue_id == handler.messages[0].queue_id
    envelope, content = handler.transaction_reads()
    assert envelope == (f"MAIL FROM:<{SENDER}> SIZE={len(MESSAGE)}\r\n".encode()
                        + b"".join(f"RCPT TO:<{r}>\r\n".encode() for r in recipients) + b"DATA\r\n")
    assert content == MESSAGE + b".\r\n"
    assert handler.messages[0].rcpt_tos == recipients and handler.messages[0].content.startswith(b"From:")


async def test_without_pipelining_offered_each_command_waits_for_its_reply(submitter, server):
    handler, _ = server
    handler.pipelining = False
    outcome = await submitter.submit(SENDER, ["one@example.org", "two@example.org"], MESSAGE)
    assert outcome.accepted and outcome.queue_id == handler.messages[0].queue_id
    assert [read.split(b" ")[0].strip() for read in handler.transaction_reads()[:4]] == [
        b"MAIL", b"RCPT", b"RCPT", b"DATA"]


async def test_the_lines_of_a_message_that_begin_with_a_dot_are_stuffed_and_arrive_intact(submitter, server):
    handler, _ = server
    body = MESSAGE + b".\r\n..two\r\n.\r\nend\r\n"
    assert (await submitter.submit(SENDER, ["one@example.org"], body)).accepted
    assert handler.messages[0].content == body


async def test_a_refused_recipient_is_reported_and_the_others_accepted(submitter, server):
    handler, _ = server
    handler.refuse["gone@example.org"] = "550 5.1.1 <gone@example.org>: Recipient address rejected"
    outcome = await submitter.submit(SENDER, ["one@example.org", "gone@example.org"], MESSAGE)
    assert outcome.accepted and outcome.queue_id == handler.messages[0].queue_id
    assert outcome.refused == {"gone@example.org": "550 5.1.1 <gone@example.org>: Recipient address rejected"}
    assert handler.messages[0].rcpt_tos == ["one@example.org"]


@pytest.mark.parametrize(("replies", "permanent"), [(["550 5.1.1 No such user", "550 5.1.1 No such user"], True),
                                                    (["550 5.1.1 No such user", "451 4.3.0 Try later"], False)])
async def test_all_recipients_refused_is_permanent_only_if_every_refusal_is(submitter, server, replies, permanent):
    handler, _ = server
    handler.refuse.update({"a@example.org": replies[0], "b@example.org": replies[1]})
    outcome = await submitter.submit(SENDER, ["a@example.org", "b@example.org"], MESSAGE)
    assert outcome == Outcome(accepted=False, permanent=permanent,
                              reply=f"a@example.org: {replies[0]}; b@example.org: {replies[1]}")
    assert not handler.submissions
    await _accepted_afterwards(submitter, handler)


async def test_a_5xx_to_mail_is_permanent_and_the_session_is_reset(submitter, server):
    handler, _ = server
    handler.mail_reply = "553 5.7.1 <bounce+1@send.example.test>: Sender address rejected"
    outcome = await submitter.submit(SENDER, ["one@example.org"], MESSAGE)
    assert outcome == Outcome(accepted=False, permanent=True, reply=handler.mail_reply)
    assert not handler.submissions
    await _accepted_afterwards(submitter, handler)


async def test_a_4xx_to_data_is_transient_and_no_content_is_sent(submitter, server):
    handler, _ = server
    handler.data_command_reply = "451 4.3.0 Try again later"
    outcome = await submitter.submit(SENDER, ["one@example.org"], MESSAGE)
    assert outcome == Outcome(accepted=False, reply="451 4.3.0 Try again later")
    assert not handler.submissions and b"Subject: hi" not in b"".join(handler.reads)
    await _accepted_afterwards(submitter, handler)


async def test_a_4xx_to_the_content_is_transient(submitter, server):
    handler, _ = server
    handler.data_reply = "451 4.7.1 Service unavailable - try again later"
    outcome = await submitter.submit(SENDER, ["one@example.org"], MESSAGE)
    assert outcome == Outcome(accepted=False, reply=handler.data_reply)
    handler.data_reply = None
    await _accepted_afterwards(submitter, handler)


async def test_a_connection_dropped_after_the_content_leaves_the_outcome_unknown(submitter, server):
    handler, _ = server
    handler.drop_after_data = True
    outcome = await submitter.submit(SENDER, ["one@example.org"], MESSAGE)
    assert not outcome.accepted and outcome.unknown and not outcome.permanent
    assert len(handler.submissions) == 1
    handler.drop_after_data = False
    await _accepted_afterwards(submitter, handler)


async def test_a_connection_dropped_before_data_is_transient_not_unknown(submitter, server):
    handler, _ = server
    handler.drop_at_rcpt = True
    outcome = await submitter.submit(SENDER, ["one@example.org"], MESSAGE)
    assert not outcome.accepted and not outcome.unknown and not outcome.permanent
    assert not handler.submissions
    await _accepted_afterwards(submitter, handler)


async def test_a_timeout_before_the_content_is_transient_not_unknown(submitter, server):
    handler, _ = server
    handler.stall_at_rcpt = 1.5
    outcome = await submitter.submit(SENDER, ["one@example.org"], MESSAGE)
    assert not outcome.accepted and not outcome.unknown and not outcome.permanent
    await _accepted_afterwards(submitter, handler)


async def test_replies_that_came_before_the_server_closed_the_connection_still_decide_the_outcome(submitter, server):
    """The recipient's 550 arrived, then the 421 to DATA and the close: the refusal counts, as it would one
    command at a time, and the email is not retried as if the connection had been lost."""
    handler, _ = server
    handler.refuse["gone@example.org"] = "550 5.1.1 <gone@example.org>: Recipient address rejected"
    handler.close_after_data_command = True
    outcome = await submitter.submit(SENDER, ["gone@example.org"], MESSAGE)
    assert outcome == Outcome(accepted=False, permanent=True,
                              reply="gone@example.org: 550 5.1.1 <gone@example.org>: Recipient address rejected")
    assert not handler.submissions
    await _accepted_afterwards(submitter, handler)
