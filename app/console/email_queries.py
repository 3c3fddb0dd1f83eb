"""The activity log's reads: the team's emails filtered and paged by keyset, its domains, a message's stored content."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Row, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.console.forms import day_bounds, parse_days
from app.domain.events.recorder import EVENT_TYPES
from app.lib.api_error import ApiError

__all__ = ["FILTER_FIELDS", "PAGE_SIZE", "EmailFilters", "Page", "email_page", "stored_content", "team_domains"]

PAGE_SIZE = 50
FILTER_FIELDS = ("recipient", "status", "tag", "domain", "since", "until")
_TAG = re.compile(r"^(?P<name>[A-Za-z0-9_-]{1,256})(?::(?P<value>[A-Za-z0-9_-]{0,256}))?$")
_MAX_TEXT = 320  # an address is at most 254 characters; a domain name 253
_LIST_COLUMNS = "id, from_address, to_addresses, subject, last_event, state, tags, scheduled_at, created_at"
_CURSOR = "(SELECT created_at, id FROM emails WHERE team_id = :team_id AND id = :cursor)"
_DOMAINS = text("SELECT name FROM domains WHERE team_id = :team_id ORDER BY name")
_CONTENT = text("SELECT state, scheduled_at, html, mime, purged_at FROM emails "
                "WHERE team_id = :team_id AND id = :email_id")


def _refuse(message: str) -> ApiError:
    return ApiError(422, "validation_error", message)


def _tag(value: str) -> dict[str, str]:
    """A tag filter, `name` or `name:value`, as the JSON object an email's tags contain."""
    match = _TAG.match(value)
    if match is None:
        raise _refuse("tag must be a tag's name, or name:value")
    return {"name": match["name"]} if match["value"] is None else {"name": match["name"], "value": match["value"]}


def _like(value: str) -> str:
    """A case-insensitive substring pattern matching `value` literally."""
    return "%" + re.sub(r"([\\%_])", r"\\\1", value) + "%"


@dataclass(frozen=True)
class EmailFilters:
    """What the activity log is narrowed to; empty fields narrow nothing. Dates are whole UTC days."""

    recipient: str = ""
    status: str = ""
    tag: str = ""
    domain: str = ""
    since: date | None = None
    until: date | None = None

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> EmailFilters:
        """The filters of the log's query string, checked (422 with the reason)."""
        values = {name: (query.get(name) or "").strip() for name in FILTER_FIELDS}
        if any(len(value) > _MAX_TEXT for value in values.values()):
            raise _refuse(f"a filter is at most {_MAX_TEXT} characters")
        if values["status"] and values["status"] not in EVENT_TYPES:
            raise _refuse(f"status must be one of {', '.join(EVENT_TYPES)}")
        if values["tag"]:
            _tag(values["tag"])
        since, until = parse_days(values["since"], values["until"])
        return cls(recipient=values["recipient"], status=values["status"], tag=values["tag"],
                   domain=values["domain"].lower(), since=since, until=until)

    def query(self) -> dict[str, str]:
        """The filters as query-string fields (the set ones only), for links to other pages."""
        return {name: str(value) for name in FILTER_FIELDS if (value := getattr(self, name))}

    def where(self) -> tuple[str, dict[str, Any]]:
        """SQL conditions (joined with AND, each starting with it) and their parameters."""
        conditions, parameters = [], {}
        if self.recipient:
            conditions.append("EXISTS (SELECT 1 FROM unnest(to_addresses || cc_addresses || bcc_addresses) AS r(a) "
                              "WHERE r.a ILIKE :recipient)")
            parameters["recipient"] = _like(self.recipient)
        if self.status:
            conditions.append("last_event = :status")
            parameters["status"] = self.status
        if self.tag:
            conditions.append("tags @> CAST(:tag AS jsonb)")
            parameters["tag"] = json.dumps([_tag(self.tag)])
        if self.domain:
            conditions.append("domain_id IN (SELECT id FROM domains WHERE team_id = :team_id AND name = :domain)")
            parameters["domain"] = self.domain
        start, end = day_bounds(self.since, self.until)
        if start:
            conditions.append("created_at >= :since")
            parameters["since"] = start
        if end:
            conditions.append("created_at < :until")
            parameters["until"] = end
        return "".join(f" AND {c}" for c in conditions), parameters


@dataclass(frozen=True)
class Page:
    """Up to PAGE_SIZE emails, newest first, and the ids to page on from (None where the log ends)."""

    rows: list[Row[Any]]
    newer: uuid.UUID | None
    older: uuid.UUID | None


async def email_page(db: AsyncSession, team_id: uuid.UUID, filters: EmailFilters, after: uuid.UUID | None = None,
                     before: uuid.UUID | None = None) -> Page:
    """The team's emails matching `filters`: the newest, or those older than `after`, or newer than `before`
    (keyset on created_at and id, as the API's list)."""
    where, parameters = filters.where()
    parameters |= {"team_id": team_id, "limit": PAGE_SIZE + 1}
    order = "DESC"
    if after is not None:
        where, parameters["cursor"] = f"{where} AND (created_at, id) < {_CURSOR}", after
    elif before is not None:
        where, order, parameters["cursor"] = f"{where} AND (created_at, id) > {_CURSOR}", "ASC", before
    rows = list((await db.execute(text(
        f"SELECT {_LIST_COLUMNS} FROM emails WHERE team_id = :team_id{where} "
        f"ORDER BY created_at {order}, id {order} LIMIT :limit"), parameters)).all())
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    if before is not None:
        rows.reverse()
    if not rows:
        return Page(rows, newer=None, older=None)
    # Walking older, the page we came from is newer; walking newer, the one we came from is older.
    newer = rows[0].id if (before is not None and more) or after is not None else None
    older = rows[-1].id if (before is None and more) or before is not None else None
    return Page(rows, newer=newer, older=older)


async def team_domains(db: AsyncSession, team_id: uuid.UUID) -> list[str]:
    """The names of the team's domains, for the domain filter."""
    return list((await db.execute(_DOMAINS, {"team_id": team_id})).scalars())


async def stored_content(db: AsyncSession, team_id: uuid.UUID, email_id: uuid.UUID) -> Row[Any] | None:
    """The email's state, send time, HTML body and MIME source (both None once purged), and when it was purged."""
    return (await db.execute(_CONTENT, {"team_id": team_id, "email_id": email_id})).first()
