"""What the API reads on nearly every request, API keys and teams' sending policy, kept for seconds.

Each API process keeps them in `NotifiedCache`s emptied on `NOTIFY api_lookups_changed` (migration 0016's
triggers on `api_keys` and `teams`), and reads the database every time while its LISTEN connection is down.
A process that commits such a change itself empties them at once, so its own next request never waits for
the notification.
"""

from __future__ import annotations

import asyncio
import uuid
import weakref
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import Session, UOWTransaction

from app.config import Settings
from app.db.models import ApiKey, Domain, Team
from app.db.notifications import follow_notifications
from app.db.team_policy import TeamPolicy, read_team_policy
from app.lib.notified_cache import NotifiedCache

__all__ = ["NOTIFY_CHANNEL", "ApiKeyRow", "Lookups"]

NOTIFY_CHANNEL = "api_lookups_changed"
# What deleting or changing these rows can change: a key, a team's policy, a domain a key is bound to.
_WATCHED = (ApiKey, Team, Domain)
_LIVE: weakref.WeakSet[Lookups] = weakref.WeakSet()


@dataclass(frozen=True)
class ApiKeyRow:
    """An API key as `postyard_api_key_lookup` returns it."""

    id: uuid.UUID
    team_id: uuid.UUID
    mode: str
    permission: str
    domain_id: uuid.UUID | None
    allowed_ips: list[str] | None
    expires_at: datetime | None
    revoked_at: datetime | None


class Lookups:
    """The API keys and team policies of one API process, each for `settings.lookup_cache_seconds` at most."""

    def __init__(self, settings: Settings) -> None:
        self.api_keys: NotifiedCache[bytes, ApiKeyRow] = NotifiedCache(settings.lookup_cache_seconds)
        self.teams: NotifiedCache[uuid.UUID, TeamPolicy] = NotifiedCache(settings.lookup_cache_seconds)
        _LIVE.add(self)

    async def api_key(self, db: AsyncSession, token_hash: bytes) -> ApiKeyRow | None:
        """The key whose token hashes to `token_hash`, or None (an unknown key is never kept)."""
        found = self.api_keys.get(token_hash)
        if found is not None:
            return found
        generation = self.api_keys.generation
        row = (await db.execute(text("SELECT * FROM postyard_api_key_lookup(:h)"), {"h": token_hash})).first()
        if row is None:
            return None
        key = ApiKeyRow(row.id, row.team_id, row.mode, row.permission, row.domain_id,
                        list(row.allowed_ips) if row.allowed_ips is not None else None, row.expires_at, row.revoked_at)
        self.api_keys.put(token_hash, key, generation)
        return key

    async def team_policy(self, db: AsyncSession, team_id: uuid.UUID) -> TeamPolicy | None:
        """The team's policy, from the cache when fresh; None once the team is gone (never kept)."""
        found = self.teams.get(team_id)
        if found is not None:
            return found
        generation = self.teams.generation
        policy = await read_team_policy(db, team_id)
        if policy is not None:
            self.teams.put(team_id, policy, generation)
        return policy

    def changed(self) -> None:
        """Something may have changed: forget everything kept."""
        self.api_keys.changed()
        self.teams.changed()

    def _listening(self, listening: bool) -> None:
        self.api_keys.set_listening(listening)
        self.teams.set_listening(listening)

    async def follow(self, engine: AsyncEngine, stop: asyncio.Event) -> None:
        """Keep the caches honest until `stop`: LISTEN, and read the database while not listening."""
        await follow_notifications(engine, {NOTIFY_CHANNEL: self.changed}, self._listening, stop)


@event.listens_for(Session, "after_flush")
def _note_watched_changes(session: Session, _flush: UOWTransaction) -> None:
    if any(isinstance(row, _WATCHED) for row in (*session.dirty, *session.deleted)):
        session.info["lookups_changed"] = True


@event.listens_for(Session, "after_commit")
def _forget_after_own_commit(session: Session) -> None:
    if session.info.pop("lookups_changed", False):
        for lookups in list(_LIVE):
            lookups.changed()


@event.listens_for(Session, "after_rollback")
def _nothing_changed(session: Session) -> None:
    session.info.pop("lookups_changed", None)
