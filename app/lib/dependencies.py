"""Values that route handlers and providers are given by name, marked for Litestar's injection."""

from __future__ import annotations

from typing import TypeAlias

from litestar.di import NamedDependency
from sqlalchemy.ext.asyncio import AsyncSession

__all__ = ["DbSession"]

DbSession: TypeAlias = NamedDependency[AsyncSession]
"""The request's transaction, provided as `db_session` by the SQLAlchemy plugin."""
