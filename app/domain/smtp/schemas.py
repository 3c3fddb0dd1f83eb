"""Request and response bodies of /smtp-credentials."""

from __future__ import annotations

from typing import Annotated

import msgspec

from app.lib.request_body import RequestBody

__all__ = ["SmtpCredentialCreate", "SmtpCredentialCreated", "SmtpCredentialDeleted", "SmtpCredentialItem",
           "SmtpCredentialList"]


class SmtpCredentialCreate(RequestBody):
    """A new login, optionally limited to one domain of the team."""

    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    domain_id: str | None = None


class SmtpCredentialItem(msgspec.Struct):
    """A credential as listed: never its password."""

    id: str
    name: str
    username: str
    domain_id: str | None
    created_at: str


class SmtpCredentialCreated(msgspec.Struct):
    """The only response that carries the password."""

    id: str
    name: str
    username: str
    password: str
    domain_id: str | None
    created_at: str


class SmtpCredentialList(msgspec.Struct):
    """The team's credentials."""

    data: list[SmtpCredentialItem]
    has_more: bool = False
    object: str = "list"


class SmtpCredentialDeleted(msgspec.Struct):
    """Acknowledges a revoked credential."""

    id: str
    deleted: bool = True
    object: str = "smtp_credential"
