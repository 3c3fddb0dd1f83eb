"""SMTP command pipelining (RFC 2920) on aiosmtplib's connection: a mail transaction's commands in one write,
their replies read in order."""

from __future__ import annotations

from aiosmtplib import SMTPException, SMTPResponse, SMTPResponseException
from aiosmtplib.email import quote_address
from aiosmtplib.protocol import (
    COMMAND_INJECTION_REGEX,
    PERIOD_REGEX,
    SMTPProtocol,
    normalize_message_line_endings,
)

__all__ = ["PipeliningProtocol", "content_bytes", "envelope_commands"]


class PipeliningProtocol(SMTPProtocol):
    """aiosmtplib's protocol, keeping every reply of a pipelined group.

    The stock protocol parses one reply per arrival of data, and drops data that arrives while a parsed reply
    waits to be picked up: replies that come in one segment, or close behind each other, would be lost. Here
    they stay buffered, and each read takes the next one from the buffer before it waits for more.
    """

    def data_received(self, data: bytes) -> None:
        waiter = self._response_waiter
        if waiter is not None and waiter.done() and self._response_pending:
            self._buffer.extend(data)
            return
        super().data_received(data)

    async def read_response(self, timeout: float | None = None) -> SMTPResponse:
        waiter = self._response_waiter
        if (waiter is None or not waiter.done()) and self._buffer:
            # A reply that came with an earlier one is read from the buffer, also once the server has closed
            # the connection behind it (after a 421, or its error limit).
            response = self._read_response_from_buffer()
            if response is not None:
                return response
        return await super().read_response(timeout)

    def send(self, data: bytes) -> None:
        """Write `data` (one or more commands, or a message's content) at once; read its replies next."""
        self._response_pending = True
        self.write(data)

    async def replies(self, count: int, timeout: float | None) -> list[SMTPResponse]:
        """The next `count` replies, in order. A malformed one raises a plain SMTPException, as a lost connection
        would: the session is out of step, not refused."""
        try:
            return [await self.read_response(timeout) for _ in range(count)]
        except SMTPResponseException as error:
            raise SMTPException(f"malformed reply: {error.message}") from error


def _line(*words: bytes) -> bytes:
    line = b" ".join(words)
    if COMMAND_INJECTION_REGEX.search(line):
        raise ValueError("Command arg contains a prohibited control character")
    return line + b"\r\n"


def envelope_commands(sender: str, recipients: list[str], size: int | None) -> list[bytes]:
    """MAIL FROM (with SIZE when the server takes it), a RCPT TO per recipient, and DATA; each a line."""
    options = [f"SIZE={size}".encode()] if size is not None else []
    return [_line(b"MAIL", b"FROM:" + quote_address(sender).encode("ascii"), *options),
            *(_line(b"RCPT", b"TO:" + quote_address(r).encode("ascii")) for r in recipients),
            _line(b"DATA")]


def content_bytes(message: bytes) -> tuple[bytes, int]:
    """What goes after the 354 reply (CRLF line endings, dot-stuffed, the final dot) and the SIZE to declare."""
    normalized = normalize_message_line_endings(message)
    return PERIOD_REGEX.sub(b"..", normalized) + b".\r\n", len(normalized)
