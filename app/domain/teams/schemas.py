"""Request and response bodies of /team."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

__all__ = ["MemberAdd", "MemberList", "MemberOut", "MemberRole", "TeamOut", "TeamUpdate"]

Role = Literal["owner", "admin", "member"]
Limit = Annotated[int, msgspec.Meta(ge=1, le=1_000_000)]


class TeamOut(msgspec.Struct):
    """The caller's team and its rate limits (None: the server default)."""

    id: str
    name: str
    rate_limit: int | None
    api_key_rate_limit: int | None
    retention_days: int = 30


class TeamUpdate(msgspec.Struct, kw_only=True):
    """New name, rate limits (requests per window) or retention of message bodies (days) for the team."""

    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | None = None
    rate_limit: Limit | None = None
    api_key_rate_limit: Limit | None = None
    retention_days: Annotated[int, msgspec.Meta(ge=1, le=3650)] | None = None


class MemberOut(msgspec.Struct):
    """A member and their role."""

    id: str
    user_id: str
    email: str
    role: str


class MemberList(msgspec.Struct):
    """The team's members."""

    data: list[MemberOut]
    object: str = "list"


class MemberAdd(msgspec.Struct, kw_only=True):
    """An existing user to add, by email, with a role."""

    email: Annotated[str, msgspec.Meta(min_length=3, max_length=320)]
    role: Role = "member"


class MemberRole(msgspec.Struct, kw_only=True):
    """A member's new role."""

    role: Role
