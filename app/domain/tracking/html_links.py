"""Rewriting an HTML body for tracking, with the standard library's tolerant HTML parser: every http(s) link of
an `<a>` goes through `click`, and a pixel is put before `</body>` (else at the end). Only the start tags of those
links change; the rest of the document stays byte for byte as the sender wrote it."""

from __future__ import annotations

import re
from collections.abc import Callable
from html import escape
from html.parser import HTMLParser

__all__ = ["trackable", "tracked_html"]

_BODY_END = re.compile(r"</body\s*>", re.IGNORECASE)


def trackable(url: str) -> bool:
    """An http(s) link without control characters (which no redirect could carry)."""
    return url.lower().startswith(("http://", "https://")) and not any(ord(c) < 32 or ord(c) == 127 for c in url)


def _start_tag(tag: str, attrs: list[tuple[str, str | None]]) -> str:
    written = "".join(f" {name}" if value is None else f' {name}="{escape(value, quote=True)}"'
                      for name, value in attrs)
    return f"<{tag}{written}>"


class _LinkFinder(HTMLParser):
    """Where each trackable link's start tag is, and what replaces it."""

    def __init__(self, click: Callable[[str], str]) -> None:
        super().__init__(convert_charrefs=True)
        self.click = click
        self.replacements: list[tuple[int, int, str, str]] = []  # line, column, original text, new text

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        original = self.get_starttag_text()
        if tag != "a" or original is None:
            return
        hrefs = [value for name, value in attrs if name == "href"]
        if len(hrefs) != 1 or hrefs[0] is None or not trackable(hrefs[0].strip()):
            return
        rewritten = [(name, self.click(value.strip()) if name == "href" and value else value) for name, value in attrs]
        line, column = self.getpos()
        self.replacements.append((line, column, original, _start_tag(tag, rewritten)))


def _offsets(html: str) -> list[int]:
    """The offset of each line's start (HTMLParser counts lines from 1, at \\n)."""
    starts = [0]
    for index, char in enumerate(html):
        if char == "\n":
            starts.append(index + 1)
    return starts


def tracked_html(html: str, click: Callable[[str], str] | None, pixel_url: str | None) -> str:
    """`html` with its links rewritten by `click` (None: left as they are) and the pixel added (None: none)."""
    if click is not None:
        finder = _LinkFinder(click)
        finder.feed(html)
        finder.close()
        starts = _offsets(html)
        parts, done = [], 0
        for line, column, original, new in finder.replacements:
            at = starts[line - 1] + column
            if html[at:at + len(original)] != original:  # never write over text the parser did not point at
                continue
            parts += [html[done:at], new]
            done = at + len(original)
        html = "".join([*parts, html[done:]])
    if pixel_url is not None:
        pixel = (f'<img src="{escape(pixel_url, quote=True)}" width="1" height="1" alt="" '
                 'style="display:block;width:1px;height:1px;border:0">')
        ends = list(_BODY_END.finditer(html))
        html = html[:ends[-1].start()] + pixel + html[ends[-1].start():] if ends else html + pixel
    return html
