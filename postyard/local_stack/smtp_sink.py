"""An SMTP server standing in for Postfix: replies `250 2.0.0 Ok: queued as <id>` and writes Postfix-style log lines."""

from __future__ import annotations

import asyncio
import email
import itertools
import secrets
import threading
from dataclasses import dataclass, field
from email.message import Message

from aiosmtpd.controller import Controller

_ALPHABET = "0123456789BCDFGHJKLMNPQRSTVWXYZbcdfghjklmnpqrstvwxyz"
_PIDS = itertools.count(2200)


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

    @property
    def message_id(self) -> str:
        return str(self.message["Message-ID"])


@dataclass
class Sink:
    """The handler: records messages and log lines; recipients can be refused with a given reply."""

    messages: list[Received] = field(default_factory=list)
    log_lines: list[str] = field(default_factory=list)
    refuse: dict[str, str] = field(default_factory=dict)
    data_delay: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 Ok"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        if self.data_delay:
            await asyncio.sleep(self.data_delay)
        queue_id = postfix_queue_id()
        received = Received(queue_id, envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.content))
        pid = next(_PIDS)
        with self.lock:
            self.messages.append(received)
            self.log_lines += [
                f"2026-11-21T20:00:00+00:00 mail postfix/cleanup[{pid}]: {queue_id}: "
                f"message-id={received.message_id}",
                f"2026-11-21T20:00:00+00:00 mail postfix/qmgr[901]: {queue_id}: from=<{envelope.mail_from}>, "
                f"size={len(received.content)}, nrcpt={len(envelope.rcpt_tos)} (queue active)",
            ]
        return f"250 2.0.0 Ok: queued as {queue_id}"

    def for_message_id(self, message_id: str) -> list[Received]:
        with self.lock:
            return [m for m in self.messages if m.message_id == message_id]


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
