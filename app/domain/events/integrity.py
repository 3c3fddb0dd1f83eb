"""Whether a DSN or ARF report names one of our emails, and which of that email's recipients it may change.

Anyone who received an email has seen its VERP Return-Path and its Message-ID, so a report must name
both consistently, and it can only speak for the email's own recipients: a forged report can at most
affect the recipients of an email its author received.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace

from app.domain.events.reports import RecipientStatus, Report

__all__ = [
    "MESSAGE_ID_MISMATCH",
    "NOT_A_RECIPIENT",
    "NO_VERP_ADDRESS",
    "REASONS",
    "RECIPIENT_NOT_NAMED",
    "UNKNOWN_EMAIL",
    "UNPARSEABLE",
    "VERP_MISMATCH",
    "SentEmail",
    "Verdict",
    "check",
    "named_email",
    "reported_addresses",
]

NO_VERP_ADDRESS = "no_verp_address"  # sent to no bounce+<id> address and quoting none
VERP_MISMATCH = "verp_mismatch"  # its VERP addresses disagree, or are not the email's envelope sender
UNKNOWN_EMAIL = "unknown_email"  # the VERP id names no email
MESSAGE_ID_MISMATCH = "message_id_mismatch"  # the returned message is another message
NOT_A_RECIPIENT = "not_a_recipient"  # it names addresses the email was not sent to
RECIPIENT_NOT_NAMED = "recipient_not_named"  # a complaint that names no recipient, on an email with several
UNPARSEABLE = "unparseable"  # the message could not be read as a report at all
REASONS = (NO_VERP_ADDRESS, VERP_MISMATCH, UNKNOWN_EMAIL, MESSAGE_ID_MISMATCH, NOT_A_RECIPIENT,
           RECIPIENT_NOT_NAMED, UNPARSEABLE)


@dataclass(frozen=True)
class SentEmail:
    """What a report is checked against: the email as we sent it."""

    id: uuid.UUID
    envelope_from: str
    message_id: str
    recipients: tuple[str, ...]


@dataclass(frozen=True)
class Verdict:
    """The recipients' statuses the report may apply (each naming our recipient), and what is ignored and why."""

    statuses: list[RecipientStatus]
    ignored: str | None = None
    ignored_addresses: list[str] = field(default_factory=list)


def reported_addresses(report: Report) -> list[str]:
    """Every address the report names as a recipient."""
    return list(dict.fromkeys(a for s in report.recipients for a in s.addresses))


def named_email(report: Report) -> uuid.UUID | str:
    """The id of the email the report names by its VERP address, or the reason it names none."""
    if not report.verp:
        return NO_VERP_ADDRESS
    if len(set(report.verp)) > 1 or report.email_id is None:
        return VERP_MISMATCH
    return report.email_id


def _same_message_id(a: str, b: str) -> bool:
    return "".join(a.split()).strip("<>").lower() == "".join(b.split()).strip("<>").lower()


def check(report: Report, sent: SentEmail) -> Verdict:
    """What of the report may change the email: nothing unless it names it, and only its recipients."""
    if any(a != sent.envelope_from.lower() for a in report.verp):
        return Verdict([], VERP_MISMATCH, reported_addresses(report))
    if report.message_id is not None and not _same_message_id(report.message_id, sent.message_id):
        return Verdict([], MESSAGE_ID_MISMATCH, reported_addresses(report))
    ours = {r.lower(): r for r in sent.recipients}
    if report.kind == "complaint" and not report.recipients:
        if len(ours) != 1:
            return Verdict([], RECIPIENT_NOT_NAMED)
        return Verdict([RecipientStatus(address=next(iter(ours.values())), action="complained")])
    statuses, strangers = [], []
    for status in report.recipients:
        ours_named = next((ours[a] for a in status.addresses if a in ours), None)
        if ours_named is None:
            strangers += status.addresses
        else:
            statuses.append(replace(status, address=ours_named))
    return Verdict(statuses, NOT_A_RECIPIENT if strangers else None, list(dict.fromkeys(strangers)))
