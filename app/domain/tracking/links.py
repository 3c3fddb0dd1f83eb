"""The signed links of tracking: a pixel per email and a redirect per link, on the API's public URL.

A token carries the team, the email and (for a click) the link itself, signed under a purpose key of its own, so
the redirect goes only where the sender's HTML pointed: a changed token is refused, never followed."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from urllib.parse import quote

from app.config import Settings
from app.domain.tracking.html_links import trackable, tracked_html
from app.lib.crypto import Keyring
from app.lib.signed_links import BadLink, LinkSigner

__all__ = ["CLICK_PATH", "OPEN_PATH", "TRACKING_LINK_SECONDS", "TRACKING_PURPOSE", "Click", "Opened", "Tracker",
           "location", "read_click", "read_open", "signer"]

TRACKING_PURPOSE = "tracking"
OPEN_PATH = "/t/o"
CLICK_PATH = "/t/c"
# Readers open old mail: a link works for about two years after the email was sent.
TRACKING_LINK_SECONDS = 2 * 366 * 24 * 3600


@dataclass(frozen=True)
class Opened:
    """What a pixel's token names."""

    team_id: uuid.UUID
    email_id: uuid.UUID


@dataclass(frozen=True)
class Click(Opened):
    """What a redirect's token names: also the link the sender wrote."""

    url: str


def signer(keyring: Keyring) -> LinkSigner:
    return LinkSigner(keyring, TRACKING_PURPOSE)


class Tracker:
    """Rewrites tracked HTML bodies at acceptance; inactive (None) without a public URL to put in the links."""

    def __init__(self, settings: Settings) -> None:
        self._base = settings.public_url.rstrip("/")
        self._signer = signer(Keyring(settings.data_keys, settings.active_data_key_id))

    @classmethod
    def for_settings(cls, settings: Settings) -> Tracker | None:
        return cls(settings) if settings.public_url else None

    def html(self, html: str, team_id: uuid.UUID, email_id: uuid.UUID, opens: bool, clicks: bool) -> str:
        """The body as sent: links through the redirect when `clicks`, a pixel when `opens`."""
        ids = [str(team_id), str(email_id)]

        def click(url: str) -> str:
            return f"{self._base}{CLICK_PATH}/{self._signer.sign([*ids, url])}"

        pixel = f"{self._base}{OPEN_PATH}/{self._signer.sign(ids)}" if opens else None
        return tracked_html(html, click if clicks else None, pixel)


def _ids(payload: object, size: int) -> list[str]:
    if not isinstance(payload, list) or len(payload) != size or not all(isinstance(p, str) for p in payload):
        raise BadLink("the token does not name a tracked email")
    return payload


def read_open(link_signer: LinkSigner, token: str) -> Opened:
    """The email a pixel's token was made for; BadLink if it was not made by this platform for a pixel."""
    team, email = _ids(link_signer.read(token, TRACKING_LINK_SECONDS), 2)
    return Opened(uuid.UUID(team), uuid.UUID(email))


def read_click(link_signer: LinkSigner, token: str) -> Click:
    """The email and link a redirect's token was made for; BadLink otherwise (a link that is not http(s) too)."""
    team, email, url = _ids(link_signer.read(token, TRACKING_LINK_SECONDS), 3)
    if not trackable(url):
        raise BadLink("the token does not name a web link")
    return Click(uuid.UUID(team), uuid.UUID(email), url)


def location(url: str) -> str:
    """The link as a Location header carries it: spaces and non-ASCII percent-encoded, the rest as written."""
    return quote(url, safe="%/:=&?~#+!$,;'@()*[]")
