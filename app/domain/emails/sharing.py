"""Shared links to an email (Resend's `POST /emails/{id}/share`): a page anyone with the link can read until it
expires, at most 48 hours. The link carries the team, the email and the expiry, signed for this purpose alone
(app/lib/signed_links.py); the page shows the message's headers and text, and its HTML in a sandboxed frame."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

from app.lib.api_error import ApiError
from app.lib.signed_links import BadLink, LinkSigner

__all__ = ["MAX_SHARE", "SHARE_PURPOSE", "parse_expires_in", "read_share_token", "share_token"]

SHARE_PURPOSE = "email-share"
MAX_SHARE = timedelta(hours=48)
_DURATION = re.compile(r"^\s*([0-9]{1,4})\s*(m|mins?|minutes?|h|hrs?|hours?|d|days?)\s*$")
_UNIT = {"m": timedelta(minutes=1), "h": timedelta(hours=1), "d": timedelta(days=1)}


def parse_expires_in(value: str | None) -> timedelta:
    """`10m`, `2 hours`, `1 day`...: how long a shared link lives (48 hours when not given, never longer)."""
    if value is None:
        return MAX_SHARE
    match = _DURATION.match(value)
    if match is None:
        raise ApiError(422, "validation_error", "expires_in must be a duration such as 10m, 2 hours or 1 day")
    lifetime = int(match[1]) * _UNIT[match[2][0]]
    if not timedelta(0) < lifetime <= MAX_SHARE:
        raise ApiError(422, "validation_error", "expires_in must be more than 0 and at most 48 hours")
    return lifetime


def share_token(signer: LinkSigner, team_id: uuid.UUID, email_id: uuid.UUID, expires_at: datetime) -> str:
    """The token of a shared link to the email, valid until `expires_at`."""
    return signer.sign([str(team_id), str(email_id), int(expires_at.timestamp())])


def read_share_token(signer: LinkSigner, token: str) -> tuple[uuid.UUID, uuid.UUID]:
    """(team, email) of a shared link that is signed and has not expired; BadLink otherwise."""
    team, email, expires = signer.read(token, int(MAX_SHARE.total_seconds()))
    if datetime.now(UTC).timestamp() >= expires:
        raise BadLink("the link has expired")
    return uuid.UUID(team), uuid.UUID(email)
