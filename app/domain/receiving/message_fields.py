"""What the API shows of a received message: its addresses, subject, bodies and headers, read with the standard
library's email parser (a header that does not parse is shown as sent, never an error)."""

from __future__ import annotations

from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import getaddresses

__all__ = ["Addresses", "addresses_of", "bodies_of", "headers_of", "storable"]

_LINE_BREAKS = str.maketrans("", "", "\r\n")


def storable(text: str) -> str:
    """Text PostgreSQL stores and JSON carries (app/lib/storable_text.py refuses the rest at the API; mail is taken
    as it comes): no NUL, and bytes that were not UTF-8, which Python keeps as surrogates, as U+FFFD."""
    try:
        data = text.encode("utf-8", "surrogateescape")  # the bytes as they came
    except UnicodeEncodeError:  # a surrogate no undecodable byte made
        data = text.encode("utf-8", "surrogatepass")
    return data.decode("utf-8", "replace").replace("\x00", "")


@dataclass(frozen=True)
class Addresses:
    """The message's own From, To, Cc, Bcc, Reply-To, Subject and Message-ID."""

    from_address: str
    to: list[str]
    cc: list[str]
    bcc: list[str]
    reply_to: list[str]
    subject: str
    message_id: str


def _parse(raw: bytes) -> EmailMessage:
    message = message_from_bytes(raw, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def _header(message: EmailMessage, name: str) -> str:
    try:
        value = message.get(name)
    except Exception:  # noqa: BLE001 - the parser's defects on hostile headers vary; show nothing rather than fail
        return ""
    # a header that cannot be stored must not keep the message queued
    return "" if value is None else storable(str(value)).translate(_LINE_BREAKS)[:998]


def _list(message: EmailMessage, name: str) -> list[str]:
    return [address for _, address in getaddresses([_header(message, name)]) if address]


def addresses_of(raw: bytes) -> Addresses:
    """The message's header fields that Resend's received email has."""
    message = _parse(raw)
    senders = _list(message, "From")
    return Addresses(from_address=senders[0] if senders else _header(message, "From"), to=_list(message, "To"),
                     cc=_list(message, "Cc"), bcc=_list(message, "Bcc"), reply_to=_list(message, "Reply-To"),
                     subject=_header(message, "Subject"), message_id=_header(message, "Message-ID"))


def _body(message: EmailMessage, subtype: str) -> str | None:
    try:
        part = message.get_body(preferencelist=(subtype,))
        return None if part is None else str(part.get_content())
    except (LookupError, UnicodeError, ValueError, AssertionError):
        return None


def bodies_of(raw: bytes) -> tuple[str | None, str | None]:
    """The HTML and the plain-text body, where the message has them."""
    message = _parse(raw)
    return _body(message, "html"), _body(message, "plain")


def headers_of(raw: bytes) -> dict[str, str | list[str]]:
    """The message's header fields as sent, by name; a name that repeats (Received) gives the list of its values."""
    headers: dict[str, list[str]] = {}
    for name, value in message_from_bytes(raw, policy=policy.compat32).raw_items():
        unfolded = " ".join(storable(str(value)).split())
        headers.setdefault(name, []).append(unfolded)
    return {name: values[0] if len(values) == 1 else values for name, values in headers.items()}
