"""Handing messages to Postfix over SMTP (aiosmtplib) and reading the queue id from its 250 reply; a
transaction that lost its connection or timed out after its content was sent has an unknown outcome.

When the server offers PIPELINING (RFC 2920), MAIL, the RCPTs and DATA go in one write and the content in a
second: two round trips per message instead of three plus one per recipient."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

import aiosmtplib

from app.config import Settings
from app.domain.emails.pipelining import PipeliningProtocol, content_bytes, envelope_commands

__all__ = ["Outcome", "Submitter", "queue_id_from_reply"]

_QUEUED_AS = re.compile(r"queued as ([0-9A-Za-z]+)")


def queue_id_from_reply(reply: str) -> str | None:
    """The Postfix queue id in `250 2.0.0 Ok: queued as 4XyZ...`, or None."""
    match = _QUEUED_AS.search(reply)
    return match.group(1) if match else None


@dataclass(frozen=True)
class Outcome:
    """What became of one submission: accepted (with a queue id), refused permanently or transiently, or
    unknown: DATA was sent and no final reply came, so Postfix may have queued the message."""

    accepted: bool
    permanent: bool = False
    unknown: bool = False
    queue_id: str | None = None
    reply: str = ""
    refused: dict[str, str] | None = None


def _code_outcome(code: int, message: str) -> Outcome:
    return Outcome(accepted=False, permanent=500 <= code < 600, reply=f"{code} {message}")


def _refused_outcome(refusals: list[tuple[str, int, str]]) -> Outcome:
    """Every recipient refused: permanent only if every refusal was."""
    return Outcome(accepted=False, permanent=all(500 <= code < 600 for _, code, _ in refusals),
                   reply="; ".join(f"{recipient}: {code} {message}" for recipient, code, message in refusals))


class _SMTP(aiosmtplib.SMTP):
    """aiosmtplib's client, noting when a transaction has sent DATA (sendmail calls `data` last), on a protocol
    that keeps the replies of pipelined commands."""

    data_sent = False

    async def connect(self, **kwargs: Any) -> aiosmtplib.SMTPResponse:
        response = await super().connect(**kwargs)
        if self.protocol is not None:
            # aiosmtplib builds its protocol itself; the subclass adds behaviour and no state of its own.
            self.protocol.__class__ = PipeliningProtocol
        return response

    async def data(self, message: str | bytes, /, **kwargs: Any) -> aiosmtplib.SMTPResponse:
        self.data_sent = True
        return await super().data(message, **kwargs)

    @property
    def pipelining(self) -> PipeliningProtocol | None:
        """The connection's protocol, when the server offers PIPELINING."""
        protocol = self.protocol
        if isinstance(protocol, PipeliningProtocol) and self.supports_extension("pipelining"):
            return protocol
        return None


class Submitter:
    """One SMTP connection to the submission address, reused for a batch and reopened when it drops.

    A session is also renewed once it is `smtp_session_max_seconds` old: Postfix binds a session to
    the milters' configuration of its start, so a long-lived one would never sign with a key added
    later.
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._smtp: _SMTP | None = None
        self._opened = 0.0

    async def _connection(self) -> _SMTP:
        s = self._settings
        if self._smtp is not None and time.monotonic() - self._opened > s.smtp_session_max_seconds:
            await self.close()
        if self._smtp is None or not self._smtp.is_connected:
            self._smtp = _SMTP(hostname=s.smtp_submission_host, port=s.smtp_submission_port,
                                         timeout=s.smtp_submission_timeout, start_tls=s.smtp_submission_starttls)
            await self._smtp.connect()
            self._opened = time.monotonic()
        if self._smtp.is_ehlo_or_helo_needed:
            try:
                await self._smtp.ehlo()
            except aiosmtplib.SMTPHeloError:
                await self._smtp.helo()  # a server without ESMTP: one command at a time, as `sendmail` would
        return self._smtp

    async def submit(self, envelope_from: str, recipients: list[str], message: bytes) -> Outcome:
        """Run one mail transaction; 4xx replies and connection problems before the content was sent are
        transient (before DATA, without pipelining), a timeout or a lost connection after it leaves the outcome
        unknown."""
        smtp: _SMTP | None = None
        try:
            smtp = await self._connection()
            smtp.data_sent = False
            if (protocol := smtp.pipelining) is not None:
                return await self._pipelined(smtp, protocol, envelope_from, recipients, message)
            refused, reply = await smtp.sendmail(envelope_from, recipients, message)
        except aiosmtplib.SMTPRecipientsRefused as error:
            return _refused_outcome([(r.recipient, r.code, r.message) for r in error.recipients])
        except aiosmtplib.SMTPResponseException as error:
            return _code_outcome(error.code, error.message)
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as error:
            unknown = smtp is not None and smtp.data_sent
            self._abandon()
            return Outcome(accepted=False, unknown=unknown,
                           reply=f"{'no reply to DATA' if unknown else 'connection'}: {error}")
        return Outcome(accepted=True, queue_id=queue_id_from_reply(reply), reply=reply,
                       refused={k: f"{v.code} {v.message}" for k, v in refused.items()} or None)

    async def _pipelined(self, smtp: _SMTP, protocol: PipeliningProtocol, envelope_from: str, recipients: list[str],
                         message: bytes) -> Outcome:
        """MAIL, the RCPTs and DATA in one write; on 354 the content. The outcome is what `sendmail`'s would be,
        except that a connection lost between DATA and the content is transient: Postfix cannot have queued a
        message it has not received. After a refusal the session is reset for the next message."""
        timeout = self._settings.smtp_submission_timeout
        content, size = content_bytes(message)
        commands = envelope_commands(envelope_from, recipients, size if smtp.supports_extension("size") else None)
        protocol.send(b"".join(commands))
        replies = await protocol.replies(len(commands), timeout)
        mail, data = replies[0], replies[-1]
        refusals = [(r, reply.code, reply.message) for r, reply in zip(recipients, replies[1:-1], strict=True)
                    if reply.code not in (250, 251)]
        nobody = len(refusals) == len(recipients)
        if data.code == 354 and (mail.code != 250 or nobody):
            protocol.send(b".\r\n")  # RFC 2920: a DATA taken without a recipient is ended at once, empty
            await protocol.replies(1, timeout)
        if mail.code != 250:
            outcome = _code_outcome(mail.code, mail.message)
        elif nobody:
            outcome = _refused_outcome(refusals)
        elif data.code != 354:
            outcome = _code_outcome(data.code, data.message)
        else:
            protocol.send(content)
            smtp.data_sent = True
            (reply,) = await protocol.replies(1, timeout)
            if reply.code == 250:
                return Outcome(accepted=True, queue_id=queue_id_from_reply(reply.message), reply=reply.message,
                               refused={r: f"{code} {text}" for r, code, text in refusals} or None)
            outcome = _code_outcome(reply.code, reply.message)
        await self._reset(smtp)
        return outcome

    async def _reset(self, smtp: _SMTP) -> None:
        """RSET after a refusal, as `sendmail` does; a session that does not take it is closed."""
        try:
            await smtp.rset()
        except (aiosmtplib.SMTPException, OSError):
            self._abandon()

    def _abandon(self) -> None:
        """Close the connection without QUIT: a session that lost a reply is out of step."""
        if self._smtp is not None:
            self._smtp.close()
        self._smtp = None

    async def close(self) -> None:
        """Say QUIT if still connected."""
        if self._smtp is not None and self._smtp.is_connected:
            try:
                await self._smtp.quit()
            except (aiosmtplib.SMTPException, OSError):
                self._smtp.close()
        self._smtp = None
