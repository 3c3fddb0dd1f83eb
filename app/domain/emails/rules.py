"""The rules every message obeys on both paths, `POST /emails` and SMTP submission: header text, fields, recipients.

A broken rule is a `Violation`: a 422 with the reason over the API, and over SMTP a 5xx reply with an
enhanced status code (RFC 3463), so that a client never retries what will be refused again.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

from app.lib.api_error import ApiError

__all__ = ["CONTROL_CLASS", "FIELD_NAME", "MALFORMED", "NOT_ALLOWED", "RESERVED_FIELDS", "SINGLE_FIELDS",
           "TOO_MANY_RECIPIENTS", "Violation", "check_field", "check_fields", "check_recipient_count", "check_text",
           "header_fields"]

# SMTP replies (code, enhanced status). The intake answers after the whole message: Postfix replays the
# envelope to it only then (smtpd_proxy_options=speed_adjust), when the client can no longer split its
# recipients, so a refusal is permanent: a 4xx would have the client retry the same transaction for days.
MALFORMED = (554, "5.6.0")
TOO_MANY_RECIPIENTS = (550, "5.5.3")
NOT_ALLOWED = (550, "5.7.1")

# Fields the platform or the receiving side writes, or that vouch for a message: no sender supplies them.
RESERVED_FIELDS = frozenset({
    "return-path", "dkim-signature", "arc-seal", "arc-message-signature", "arc-authentication-results",
    "authentication-results", "delivered-to", "x-original-to", "resent-from", "resent-to", "resent-cc",
    "resent-bcc", "resent-date", "resent-message-id", "resent-sender",
})
_RESERVED_PREFIX = "x-postyard-"
# RFC 5322 section 3.6 and RFC 2045: fields a message carries at most once (From exactly once). A second
# From or Subject is what a header injection adds; receivers disagree on which one counts.
SINGLE_FIELDS = frozenset({
    "from", "sender", "reply-to", "to", "cc", "bcc", "subject", "date", "message-id", "in-reply-to",
    "references", "mime-version", "content-type", "content-transfer-encoding",
})
# Every C0 and C1 control (DEL too) but TAB, and the Unicode line and paragraph separators: any may end
# a header line somewhere (Python's compat32 folding breaks lines at VT, FF and FS..RS, str.splitlines
# also at NEL, LS and PS, and mail software at a bare CR or LF). Unpaired surrogates have no UTF-8 form.
# Both are written as regex escapes, valid in Python and in the patterns of the OpenAPI document.
CONTROL_CLASS = r"\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029"
FIELD_NAME = r"[!-9;-~]{1,76}"  # RFC 5322 ftext
_REFUSED = re.compile(rf"[{CONTROL_CLASS}\ud800-\udfff]")
_FIELD_NAME = re.compile(FIELD_NAME)


class Violation(ApiError):
    """A message the platform will not send: 422 over the API; `smtp` (code, enhanced status) over SMTP."""

    def __init__(self, reason: str, smtp: tuple[int, str] = MALFORMED) -> None:
        super().__init__(422, "validation_error", reason)
        self.reason, self.smtp = reason, smtp


def check_text(value: str, what: str) -> str:
    """`value`, if it holds no control character (TAB aside) and no line or paragraph separator."""
    found = _REFUSED.search(value)
    if found:
        raise Violation(f"{what} must not contain U+{ord(found.group()):04X} "
                        "(no control characters, line or paragraph separators)")
    return value


def check_field(name: str, value: str) -> None:
    """One header field a sender may write: a valid name, not one the platform reserves, a clean value."""
    if not _FIELD_NAME.fullmatch(name):
        raise Violation(f"{name[:80]!a} is not a valid header name")
    lowered = name.lower()
    if lowered in RESERVED_FIELDS or lowered.startswith(_RESERVED_PREFIX):
        raise Violation(f"the {name} header may not be set", NOT_ALLOWED)
    check_text(value, f"the {name} header")


def check_fields(fields: Sequence[tuple[str, str]]) -> None:
    """A message's header block: every field as `check_field`, exactly one From, at most one of the others."""
    for name, value in fields:
        check_field(name, value)
    counts = Counter(name.lower() for name, _ in fields)
    if counts["from"] != 1:
        raise Violation(f"a message has exactly one From header, not {counts['from']}")
    for name in sorted(SINGLE_FIELDS):
        if counts[name] > 1:
            raise Violation(f"a message has at most one {name} header, not {counts[name]}")


def check_recipient_count(count: int, limit: int) -> None:
    """At most `limit` recipients (to, cc and bcc together; over SMTP, the envelope's)."""
    if count > limit:
        raise Violation(f"at most {limit} recipients (to, cc and bcc together), not {count}", TOO_MANY_RECIPIENTS)


def header_fields(message: bytes) -> list[tuple[str, str]]:
    """The top-level header fields of a CRLF message, in order, as (name, unfolded value).

    Only CRLF ends a line: a bare CR or LF stays in the value, where `check_text` refuses it.
    """
    if message.startswith(b"\r\n"):
        head = b""
    else:
        end = message.find(b"\r\n\r\n")
        head = message.removesuffix(b"\r\n") if end < 0 else message[:end]
    try:
        lines = head.decode("utf-8").split("\r\n") if head else []
    except UnicodeDecodeError:
        raise Violation("header fields must be ASCII or UTF-8 (RFC 6532)") from None
    fields: list[tuple[str, str]] = []
    for line in lines:
        if line[:1] in (" ", "\t"):
            if not fields:
                raise Violation("the header block starts with a continuation line")
            name, value = fields[-1]
            fields[-1] = (name, value + line)
            continue
        name, colon, value = line.partition(":")
        if not colon:
            raise Violation("a header line has no colon")
        fields.append((name.rstrip(" \t"), value.lstrip(" \t")))
    return fields
