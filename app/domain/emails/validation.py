"""Turning a SendEmail request into a checked draft: addresses, headers, attachments, schedule, limits."""

from __future__ import annotations

import base64
import binascii
import mimetypes
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import dateparser
from email_validator import EmailNotValidError, validate_email

from app.domain.emails.rules import RESERVED_FIELDS, check_field, check_recipient_count, check_text
from app.domain.emails.schemas import NATURAL_TIME, NodeBuffer, SendEmail
from app.lib.api_error import ApiError

__all__ = ["FORBIDDEN_HEADERS", "AttachmentData", "Draft", "check_address", "draft_from_request",
           "parse_schedule"]

# `headers` may not hold what the platform reserves, nor what the request's own fields render.
FORBIDDEN_HEADERS = RESERVED_FIELDS | frozenset({
    "from", "to", "cc", "bcc", "subject", "date", "message-id", "sender", "reply-to", "received",
    "mime-version", "content-type", "content-transfer-encoding", "content-disposition",
})
_CONTENT_TYPE = re.compile(r"[A-Za-z0-9][\w.+-]*/[A-Za-z0-9][\w.+-]*", re.ASCII)
_NAME_ADDR = re.compile(r"^\s*(?:\"?(?P<name>[^\"<>]*?)\"?\s*)?<(?P<addr>[^<>]+)>\s*$")
_MAX_SCHEDULE = timedelta(days=30)
_NATURAL_TIME = re.compile(NATURAL_TIME)


@dataclass(frozen=True)
class AttachmentData:
    """A decoded attachment."""

    filename: str
    content: bytes
    content_type: str
    content_id: str | None = None


@dataclass
class Draft:
    """A validated message, ready to be rendered and stored."""

    from_name: str
    from_address: str
    to: list[str]
    cc: list[str]
    bcc: list[str]
    reply_to: list[str]
    subject: str
    html: str | None
    text: str | None
    headers: list[tuple[str, str]]
    attachments: list[AttachmentData]
    tags: list[dict[str, str]]
    scheduled_at: datetime | None
    attachment_bytes: int = field(default=0)

    @property
    def from_domain(self) -> str:
        """The domain of the From address, lowercase."""
        return self.from_address.rpartition("@")[2].lower()

    @property
    def recipients(self) -> list[str]:
        """Every envelope recipient, de-duplicated, in order."""
        seen: dict[str, None] = {}
        for address in self.to + self.cc + self.bcc:
            seen.setdefault(address, None)
        return list(seen)


def _refuse(message: str) -> ApiError:
    return ApiError(422, "validation_error", message)


def check_address(value: str, what: str) -> str:
    """A syntactically valid address (no DNS lookups), normalised as email-validator does."""
    check_text(value, what)
    try:
        return validate_email(value.strip(), check_deliverability=False, allow_smtputf8=False,
                              test_environment=True).normalized
    except EmailNotValidError as error:
        raise _refuse(f"{what}: invalid email address ({error})") from None


def _name_and_address(value: str, what: str) -> tuple[str, str]:
    check_text(value, what)
    match = _NAME_ADDR.match(value)
    if match:
        return match.group("name").strip(), check_address(match.group("addr"), what)
    return "", check_address(value, what)


def _addresses(value: str | list[str] | None, what: str, required: bool = False) -> list[str]:
    items = [value] if isinstance(value, str) else list(value or [])
    if required and not items:
        raise _refuse(f"{what} must name at least one address")
    return [_name_and_address(item, what)[1] for item in items]


def _natural_time(value: str, now: datetime) -> datetime | None:
    """Resend's natural-language times ("in 1 min", "tomorrow at 9am"), read in English and UTC."""
    return dateparser.parse(value, languages=["en"], settings={
        "RELATIVE_BASE": now.replace(tzinfo=None), "TIMEZONE": "UTC", "TO_TIMEZONE": "UTC",
        "RETURN_AS_TIMEZONE_AWARE": True, "PREFER_DATES_FROM": "future"})


def parse_schedule(value: str | None, now: datetime | None = None) -> datetime | None:
    """An ISO 8601 time (UTC when no offset) or a natural-language one, at most 30 days ahead; None or a past
    time means now."""
    if value is None or not value.strip():
        return None
    now = now or datetime.now(UTC)
    try:
        when: datetime | None = datetime.fromisoformat(value.strip())
    except ValueError:
        when = _natural_time(value.strip(), now) if _NATURAL_TIME.match(value.strip()) else None
    if when is None:
        raise _refuse("scheduled_at must be an ISO 8601 date and time, or a time in English: 'in <number> "
                      "<minutes, hours, days...>' or 'tomorrow', optionally 'at 9am'")
    when = when if when.tzinfo else when.replace(tzinfo=UTC)
    if when - now > _MAX_SCHEDULE:
        raise _refuse("scheduled_at must be within 30 days")
    return when if when > now else None


def _headers(headers: dict[str, str] | None) -> list[tuple[str, str]]:
    checked = []
    for name, value in (headers or {}).items():
        check_field(name, value)
        if name.lower() in FORBIDDEN_HEADERS:
            raise _refuse(f"headers: {name} may not be set")
        if len(value) > 998:
            raise _refuse(f"headers: the value of {name} is too long")
        checked.append((name, value))
    if len({name.lower() for name, _ in checked}) < len(checked):
        raise _refuse("headers: each header may be set once")
    return checked


def _attachment(item: object, index: int) -> AttachmentData:
    from app.domain.emails.schemas import Attachment

    assert isinstance(item, Attachment)
    what = f"attachments[{index}]"
    if item.path:
        raise _refuse(f"{what}: attachments by path are not supported; send the content base64-encoded")
    if item.content is None or not item.filename:
        raise _refuse(f"{what}: filename and content are required")
    if isinstance(item.content, NodeBuffer | list):
        values = item.content.data if isinstance(item.content, NodeBuffer) else item.content
        if any(not 0 <= b <= 255 for b in values):
            raise _refuse(f"{what}: content bytes must be 0..255")
        content = bytes(values)
    else:
        try:
            content = base64.b64decode(item.content, validate=True)
        except (binascii.Error, ValueError):
            raise _refuse(f"{what}: content must be base64") from None
    filename = check_text(item.filename, f"{what}.filename")
    content_type = item.content_type or mimetypes.guess_type(filename)[0] or "application/octet-stream"
    if not _CONTENT_TYPE.fullmatch(content_type):
        raise _refuse(f"{what}: content_type must be type/subtype")
    content_id = check_text(item.content_id, f"{what}.content_id") if item.content_id else None
    if content_id and any(c in content_id for c in "<> "):
        raise _refuse(f"{what}: content_id must not contain <, > or spaces")
    return AttachmentData(filename=filename, content=content, content_type=content_type, content_id=content_id)


def draft_from_request(data: SendEmail, max_recipients: int) -> Draft:
    """Validate one request (its template already rendered in); raises a 422 ApiError naming the first problem."""
    if data.from_ is None:
        raise _refuse("from is required")
    if data.subject is None:
        raise _refuse("subject is required")
    from_name, from_address = _name_and_address(data.from_, "from")
    to = _addresses(data.to, "to", required=True)
    cc, bcc = _addresses(data.cc, "cc"), _addresses(data.bcc, "bcc")
    check_recipient_count(len(to) + len(cc) + len(bcc), max_recipients)
    if data.html is None and data.text is None:
        raise _refuse("html or text is required")
    attachments = [_attachment(a, i) for i, a in enumerate(data.attachments or [])]
    return Draft(
        from_name=from_name, from_address=from_address, to=to, cc=cc, bcc=bcc,
        reply_to=_addresses(data.reply_to, "reply_to"),
        subject=check_text(data.subject, "subject"), html=data.html, text=data.text,
        headers=_headers(data.headers), attachments=attachments,
        tags=[{"name": check_text(t.name, f"tags[{i}].name"), "value": check_text(t.value, f"tags[{i}].value")}
              for i, t in enumerate(data.tags or [])],
        scheduled_at=parse_schedule(data.scheduled_at),
        attachment_bytes=sum(len(a.content) for a in attachments),
    )
