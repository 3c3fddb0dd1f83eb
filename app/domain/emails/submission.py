"""Handing messages to Postfix over SMTP (aiosmtplib) and reading the queue id from its 250 reply; a
transaction that lost its connection or timed out after DATA was sent has an unknown outcome."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

import aiosmtplib

from app.config import Settings

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


class _SMTP(aiosmtplib.SMTP):
    """aiosmtplib's client, noting when a transaction has sent DATA (sendmail calls `data` last)."""

    data_sent = False

    async def data(self, message: str | bytes, /, **kwargs: Any) -> aiosmtplib.SMTPResponse:
        self.data_sent = True
        return await super().data(message, **kwargs)


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
        return self._smtp

    async def submit(self, envelope_from: str, recipients: list[str], message: bytes) -> Outcome:
        """Run one mail transaction; 4xx replies and connection problems before DATA are transient, a timeout
        or a lost connection after DATA was sent leaves the outcome unknown."""
        smtp: _SMTP | None = None
        try:
            smtp = await self._connection()
            smtp.data_sent = False
            refused, reply = await smtp.sendmail(envelope_from, recipients, message)
        except aiosmtplib.SMTPRecipientsRefused as error:
            codes = [r.code for r in error.recipients]
            permanent = all(500 <= c < 600 for c in codes)
            return Outcome(accepted=False, permanent=permanent, reply="; ".join(
                f"{r.recipient}: {r.code} {r.message}" for r in error.recipients))
        except aiosmtplib.SMTPResponseException as error:
            return _code_outcome(error.code, error.message)
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as error:
            unknown = smtp is not None and smtp.data_sent
            await self.close()
            return Outcome(accepted=False, unknown=unknown,
                           reply=f"{'no reply to DATA' if unknown else 'connection'}: {error}")
        return Outcome(accepted=True, queue_id=queue_id_from_reply(reply), reply=reply,
                       refused={k: f"{v.code} {v.message}" for k, v in refused.items()} or None)

    async def close(self) -> None:
        """Say QUIT if still connected."""
        if self._smtp is not None and self._smtp.is_connected:
            try:
                await self._smtp.quit()
            except (aiosmtplib.SMTPException, OSError):
                self._smtp.close()
        self._smtp = None
