"""An SMTP server standing in for Postfix: replies `250 2.0.0 Ok: queued as <id>` and writes Postfix-style log lines
(with the time each was logged, as `journalctl -o short-iso` prints them)."""

from __future__ import annotations

import asyncio
import email
import itertools
import secrets
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import Message
from functools import cached_property

from aiosmtpd.controller import Controller

_ALPHABET = "0123456789BCDFGHJKLMNPQRSTVWXYZbcdfghjklmnpqrstvwxyz"
_PIDS = itertools.count(2200)


def _now() -> str:
    return datetime.now(UTC).isoformat()


def postfix_queue_id() -> str:
    """A long Postfix queue id (enable_long_queue_ids = yes)."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(14))


@dataclass
class Received:
    """One message the sink accepted."""

    queue_id: str
    mail_from: str
    rcpt_tos: list[str]
    content: bytes

    @property
    def message(self) -> Message:
        return email.message_from_bytes(self.content)

    @cached_property
    def message_id(self) -> str:
        # Parsed once: tests poll the sink's whole history under its lock, and a session's sink holds
        # thousands of messages; parsing each on every poll starved the sink's own thread for seconds.
        return str(self.message["Message-ID"])


@dataclass
class Sink:
    """The handler: records messages and log lines; recipients can be refused with a given reply.

    Its EHLO offers PIPELINING, as Postfix's does, unless `pipelining` is off.

    After a message's data it waits `data_delay` seconds (Postfix's milters), then accepts it, or refuses
    it with `data_reply` when set (Postfix's cleanup logged its Message-ID all the same); with
    `drop_after_data` it then closes the connection without a reply. `submissions` holds every message
    whose data arrived, `messages` those accepted.
    """

    messages: list[Received] = field(default_factory=list)
    submissions: list[Received] = field(default_factory=list)
    log_lines: list[str] = field(default_factory=list)
    refuse: dict[str, str] = field(default_factory=dict)
    data_delay: float = 0.0
    data_reply: str | None = None
    drop_after_data: bool = False
    pipelining: bool = True
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_EHLO(self, server, session, envelope, hostname, responses):  # noqa: N802
        session.host_name = hostname
        return [*responses[:-1], "250-PIPELINING", responses[-1]] if self.pipelining else responses

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 Ok"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        queue_id = postfix_queue_id()
        received = Received(queue_id, envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.content))
        pid = next(_PIDS)
        delay, reply, drop = self.data_delay, self.data_reply, self.drop_after_data  # as set when the data arrived
        with self.lock:
            self.submissions.append(received)
            self.log_lines.append(f"{_now()} mail postfix/cleanup[{pid}]: {queue_id}: "
                                  f"message-id={received.message_id}")
        # Postfix decides whether or not the client is still there: the decision outlives a cancelled session.
        return await asyncio.shield(self._decide(server, received, pid, delay, reply, drop))

    async def _decide(self, server, received: Received, pid: int, delay: float, reply: str | None,
                      drop: bool) -> str:
        queue_id = received.queue_id
        if delay:
            await asyncio.sleep(delay)
        with self.lock:
            if reply is None:
                self.messages.append(received)
                self.log_lines.append(
                    f"{_now()} mail postfix/qmgr[901]: {queue_id}: from=<{received.mail_from}>, "
                    f"size={len(received.content)}, nrcpt={len(received.rcpt_tos)} (queue active)")
            else:
                self.log_lines.append(f"{_now()} mail postfix/cleanup[{pid}]: {queue_id}: milter-reject: "
                                      f"END-OF-MESSAGE from localhost[127.0.0.1]: {reply[4:]}")
        if drop and server.transport is not None:
            server.transport.abort()
        return reply or f"250 2.0.0 Ok: queued as {queue_id}"

    def log(self, line: str) -> None:
        """Log a line of Postfix's (after the sink's own), stamped with the time."""
        with self.lock:
            self.log_lines.append(f"{_now()} mail {line}")

    def for_message_id(self, message_id: str) -> list[Received]:
        """The accepted messages with this Message-ID."""
        with self.lock:
            return [m for m in self.messages if m.message_id == message_id]

    def submitted(self, message_id: str) -> int:
        """How many times a message with this Message-ID was submitted (its data received), accepted or not."""
        with self.lock:
            return sum(m.message_id == message_id for m in self.submissions)

    def reset(self) -> None:
        """Back to accepting every message at once."""
        self.refuse.clear()
        self.data_delay, self.data_reply, self.drop_after_data, self.pipelining = 0.0, None, False, True


class SinkServer:
    """The sink served on a loopback port in a thread."""

    def __init__(self, port: int) -> None:
        self.sink = Sink()
        self.port = port
        self.controller = Controller(self.sink, hostname="127.0.0.1", port=port)

    def start(self) -> None:
        self.controller.start()

    def stop(self) -> None:
        self.controller.stop()
