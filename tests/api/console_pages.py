"""Reading console pages in tests: forms, their CSRF token, figures and visible text, with the stdlib parser."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from html.parser import HTMLParser

from conftest import sign_up

PASSWORD = "correct horse battery staple"
SESSION_COOKIE = "postyard_session"
HOST = "testserver.local"
_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


@dataclass
class Element:
    """A start tag, its attributes and the text inside it."""

    tag: str
    attrs: dict[str, str]
    text: str = ""
    children_text: list[str] = field(default_factory=list)


class Page(HTMLParser):
    """A parsed page: every element (with its text) in document order, and the page's visible text."""

    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.elements: list[Element] = []
        self._open: list[Element] = []
        self._texts: list[str] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, {k: v or "" for k, v in attrs})
        self.elements.append(element)
        if tag not in _VOID:
            self._open.append(element)

    def handle_endtag(self, tag: str) -> None:
        for index in range(len(self._open) - 1, -1, -1):
            if self._open[index].tag == tag:
                del self._open[index:]
                break

    def handle_data(self, data: str) -> None:
        for element in self._open:
            element.children_text.append(data)
        if not any(e.tag in ("script", "style", "title") for e in self._open):
            self._texts.append(data)

    @property
    def text(self) -> str:
        """The visible text, whitespace collapsed."""
        return " ".join(" ".join(self._texts).split())

    def find(self, tag: str | None = None, **attrs: str) -> list[Element]:
        """Elements with `tag` (any when None) whose attributes include `attrs` (`data_x` means `data-x`)."""
        wanted = {k.replace("_", "-"): v for k, v in attrs.items()}
        return [e for e in self.elements if (tag is None or e.tag == tag)
                and all(e.attrs.get(k) == v for k, v in wanted.items())]

    def text_of(self, tag: str | None = None, **attrs: str) -> str:
        """The text inside the first matching element."""
        return " ".join("".join(self.find(tag, **attrs)[0].children_text).split())

    def csrf_token(self) -> str:
        """The CSRF token the page's forms carry."""
        return self.find("input", name="csrf_token")[0].attrs["value"]


def new_email() -> str:
    return f"c{uuid.uuid4().hex[:10]}@example.test"


async def console_owner(client, email: str | None = None, team_name: str = "Acme") -> dict:
    """Sign up a new team's owner through the API; the client is then signed in (its cookie serves the console)."""
    response = await sign_up(client, email or new_email(), PASSWORD, team_name)
    assert response.status_code == 201, response.text
    return response.json()


async def console_page(client, path: str) -> Page:
    """GET a console page that must answer 200."""
    response = await client.get(path)
    assert response.status_code == 200, (response.status_code, response.text[:500])
    return Page(response.text)


async def post_form(client, path: str, fields: dict[str, str], csrf_from: str | None = None):
    """POST `fields` as a form; with `csrf_from`, first read the CSRF token from that page."""
    if csrf_from is not None:
        fields = {"csrf_token": (await console_page(client, csrf_from)).csrf_token(), **fields}
    return await client.post(path, data=fields)
