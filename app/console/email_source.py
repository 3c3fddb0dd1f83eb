"""A stored message's MIME source, read for the console: its header fields and its text for display."""

from __future__ import annotations

from email import policy
from email.parser import BytesParser

__all__ = ["SOURCE_LIMIT", "headers", "source_text"]

SOURCE_LIMIT = 256 * 1024  # bytes of the source shown on the page; the whole of it is downloaded


def headers(mime: bytes) -> list[tuple[str, str]]:
    """The message's header fields in order, encoded words decoded (a malformed one is shown as it is)."""
    message = BytesParser(policy=policy.default).parsebytes(mime, headersonly=True)
    fields = []
    for name, raw in message.raw_items():
        try:
            value = str(policy.default.header_fetch_parse(name, raw))
        except Exception:  # a header the parser cannot decode is shown raw
            value = raw
        fields.append((name, " ".join(value.split())))
    return fields


def source_text(mime: bytes) -> tuple[str, bool]:
    """The source as text for a <pre> (undecodable bytes replaced), and whether it was cut at SOURCE_LIMIT."""
    return mime[:SOURCE_LIMIT].decode("utf-8", errors="replace"), len(mime) > SOURCE_LIMIT

