"""What repositories run statements on: a session, or a connection of an engine."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

__all__ = ["Executor"]

Executor = AsyncSession | AsyncConnection
