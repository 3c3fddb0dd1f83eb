"""Rewriting an HTML body for tracking, with the standard library's tolerant HTML parser: the `href` value of
every `<a>` whose link is http(s) goes through `click`, and a pixel is put before the document's `</body>` (else
at the end). Only those `href` values change, in place; the rest of the document stays byte for byte as the
sender wrote it. HTML the parser cannot read keeps its links as written."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from html import escape
from html.entities import html5
from html.parser import HTMLParser

__all__ = ["attribute_value", "trackable", "tracked_html"]

logger = logging.getLogger("postyard.tracking")
_HREF = re.compile(r"""(?<=[\s"'])href\s*=\s*("[^"]*"|'[^']*'|[^\s"'=<>`]+)""", re.IGNORECASE)
_REFERENCE = re.compile(r"&(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[A-Za-z][A-Za-z0-9]*;?)")
_LITERAL_TEXT = ("textarea", "title")  # their content is text, so a link in it is no link


def trackable(url: str) -> bool:
    """An http(s) link without control characters (which no redirect could carry)."""
    return url.lower().startswith(("http://", "https://")) and not any(ord(c) < 32 or ord(c) == 127 for c in url)


def attribute_value(raw: str) -> str:
    """An attribute's value as a browser reads it (HTML5): a named reference without `;` stays as written unless
    it is a whole legacy name, so `?a=1&region=eu` keeps its `&region`."""

    def decoded(match: re.Match[str]) -> str:
        reference = match.group(1)
        if reference.startswith("#"):
            digits = reference.rstrip(";")
            try:
                code = int(digits[2:], 16) if digits[1:2] in ("x", "X") else int(digits[1:])
                return chr(code) if 0 < code <= 0x10FFFF else "\ufffd"
            except ValueError:
                return match.group(0)
        if reference.endswith(";"):
            return html5.get(reference, match.group(0))
        follows = raw[match.end():match.end() + 1]
        return html5[reference] if reference in html5 and follows != "=" else match.group(0)

    return _REFERENCE.sub(decoded, raw)


class _Finder(HTMLParser):
    """Where each trackable link's `href` value is, and where the document's `</body>` is."""

    def __init__(self, click: Callable[[str], str] | None) -> None:
        super().__init__(convert_charrefs=True)
        self.click = click
        self.replacements: list[tuple[tuple[int, int], int, int, str]] = []  # tag position, value span, new text
        self.body_end: tuple[int, int] | None = None
        self._literal = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _LITERAL_TEXT:
            self._literal += 1
        raw = self.get_starttag_text()
        if self.click is None or tag != "a" or raw is None or self._literal:
            return
        hrefs = list(_HREF.finditer(raw))
        if len(hrefs) != 1:
            return
        value = hrefs[0].group(1)
        url = attribute_value(value[1:-1] if value[:1] in "\"'" else value).strip()
        if trackable(url):
            self.replacements.append((self.getpos(), hrefs[0].start(1), hrefs[0].end(1),
                                      f'"{escape(self.click(url), quote=True)}"'))

    def handle_endtag(self, tag: str) -> None:
        if tag in _LITERAL_TEXT:
            self._literal = max(0, self._literal - 1)
        elif tag == "body":
            self.body_end = self.getpos()


def _offset(html: str, starts: list[int], position: tuple[int, int]) -> int:
    return starts[position[0] - 1] + position[1]


def tracked_html(html: str, click: Callable[[str], str] | None, pixel_url: str | None) -> str:
    """`html` with its links rewritten by `click` (None: left as they are) and the pixel added (None: none)."""
    finder = _Finder(click)
    try:
        finder.feed(html)
        finder.close()
    except Exception:  # noqa: BLE001 - the parser's own asserts on odd markup: the links stay as written
        logger.warning("tracking: HTML the parser cannot read; its links are not tracked")
        finder = _Finder(None)
    starts = [0, *(i + 1 for i, c in enumerate(html) if c == "\n")]
    edits = [(_offset(html, starts, at) + start, _offset(html, starts, at) + end, new)
             for at, start, end, new in finder.replacements]
    if pixel_url is not None:
        pixel = (f'<img src="{escape(pixel_url, quote=True)}" width="1" height="1" alt="" '
                 'style="display:block;width:1px;height:1px;border:0">')
        at = _offset(html, starts, finder.body_end) if finder.body_end else len(html)
        edits.append((at, at, pixel))
    parts, done = [], 0
    for start, end, new in sorted(edits):
        parts += [html[done:start], new]
        done = end
    return "".join([*parts, html[done:]])
