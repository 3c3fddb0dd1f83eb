"""The SMTP intake service: Postfix's before-queue proxy filter for mail submitted on 465/587.

Postfix has already done TLS, AUTH and the sender-login check when it relays the transaction here
(SMTPD_PROXY_README); this server (aiosmtpd, on a unix socket) stores each message as an email
and answers for it, and Postfix passes the answer to the client:

- 250 with the email's id once the email is committed (`GET /emails/{id}` shows it);
- 550/552/554 with an enhanced status code for a message the platform will not send, 554 5.7.1 while the
  team is suspended or awaiting approval, 450 4.7.1 while it is over a sending quota. The rules of
  `POST /emails` hold here too (app/domain/emails/rules.py): 550 5.5.3 over the recipient cap, 554 5.6.0
  for a malformed header block (a second From, a control character) or a message that cannot be parsed;
- 451 4.3.0 when the message was not stored for a reason outside it (the database unreachable, its
  group's commit failed), so the client keeps the message and retries. Anything else is answered 5xx:
  retrying the same message could only fail the same way.
"""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from email.errors import MessageError
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.config import Settings
from app.db.engines import create_engine
from app.db.group_commit import GroupCommit, NotStored
from app.domain.emails.admission import SendingRefused
from app.domain.emails.intake import ParsedSubmission, Refused, Submission, parse_submission, store_submission
from app.domain.emails.rules import Violation
from app.domain.events.ingest import UNREACHABLE
from app.lib.signals import run_until_stopped

__all__ = ["CONNECTIONS", "IGNORED_PARAMETERS", "IntakeHandler", "IntakeSMTP", "serve"]

log = logging.getLogger("postyard.smtp_intake")

# Postfix relays the client's MAIL/RCPT parameters verbatim. The envelope sender becomes the email's
# VERP address, so DSN requests (RET, ENVID, NOTIFY, ORCPT) and AUTH= have nothing to act on.
IGNORED_PARAMETERS = frozenset({"AUTH", "RET", "ENVID", "NOTIFY", "ORCPT"})
TEMPORARY_FAILURE = "451 4.3.0 The message could not be stored; try again later"
UNPARSABLE = "554 5.6.0 The message could not be parsed"
FAILED = "554 5.3.0 The message could not be accepted"
# What the email package raises on a message it cannot read.
_PARSE_ERRORS = (MessageError, LookupError, UnicodeError, ValueError)
# Database connections: the messages are stored a group per transaction, one transaction at a time, so one
# connection does, kept open (a new one would cost a TLS handshake, its authentication and asyncpg's type
# introspection).
CONNECTIONS = 1


class IntakeSMTP(SMTP):
    """aiosmtpd's server, accepting (and ignoring) the parameters above instead of answering 555."""

    def _getparams(self, params: Any) -> dict[str, str | bool] | None:
        found = super()._getparams(params)
        return None if found is None else {k: v for k, v in found.items() if k not in IGNORED_PARAMETERS}


class IntakeHandler:
    """aiosmtpd handler: one committed email per DATA, or a refusal.

    Each message is parsed in its own session's turn; the messages of concurrent sessions are then stored
    a group per transaction (app/db/group_commit.py), each answered after the commit that holds it.
    """

    def __init__(self, engine: AsyncEngine, settings: Settings) -> None:
        self.engine, self.settings = engine, settings
        self.groups: GroupCommit[AsyncConnection, ParsedSubmission, uuid.UUID] = GroupCommit(
            engine.begin, store_submission)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        content = envelope.original_content or b""
        submission = Submission(envelope.mail_from or "", list(envelope.rcpt_tos), content)
        try:
            email_id = await self.groups.submit(parse_submission(submission, self.settings))
        except Refused as refused:
            log.info("refused: %s", refused.reply, extra={"sender": submission.envelope_from})
            return refused.reply
        except Violation as violation:
            reply = Refused(*violation.smtp, violation.reason[:1].upper() + violation.reason[1:]).reply
            log.info("refused: %s", reply, extra={"sender": submission.envelope_from})
            return reply
        except SendingRefused as refused:  # suspended or awaiting approval (554 5.7.1), over quota (450 4.7.1)
            log.info("refused: %s", refused.smtp_reply, extra={"sender": submission.envelope_from})
            return refused.smtp_reply
        except (NotStored, *UNREACHABLE):
            log.warning("not stored (database unreachable or commit failed); the client will retry")
            return TEMPORARY_FAILURE
        except Exception as error:  # answered 5xx: the client returns the message to its sender
            if isinstance(error, _PARSE_ERRORS):
                log.info("refused: %s (%r)", UNPARSABLE, error, extra={"sender": submission.envelope_from})
                return UNPARSABLE
            log.exception("intake failed")
            return FAILED
        return f"250 2.0.0 Ok: queued as {email_id}"


async def serve(socket_path: Path, settings: Settings, stop: asyncio.Event | None = None) -> None:
    """Listen on `socket_path` (group-writable for Postfix) until `stop` is set."""
    engine = create_engine(settings.system_database_url, settings, "postyard-smtp-intake", pool_size=CONNECTIONS,
                           max_overflow=0)
    handler = IntakeHandler(engine, settings)
    socket_path.unlink(missing_ok=True)
    server = await asyncio.get_running_loop().create_unix_server(
        lambda: IntakeSMTP(handler, hostname=settings.mail_hostname, data_size_limit=None, enable_SMTPUTF8=True,
                           timeout=settings.smtp_submission_timeout),
        path=str(socket_path))
    os.chmod(socket_path, 0o660)
    try:
        async with server:
            await (stop or asyncio.Event()).wait()
    finally:
        await engine.dispose()


def main(settings: Settings) -> None:
    """Run until SIGTERM or SIGINT."""
    # aiosmtpd logs every connection and command at INFO; Postfix already logs each session.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    run_until_stopped(lambda stop: serve(Path(settings.smtp_intake_socket), settings, stop))
