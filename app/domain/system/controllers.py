"""Health, Prometheus metrics and a trivial JSON route."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
from litestar import Controller, MediaType, Request, Response, get
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.lib.auth import services

__all__ = ["Health", "SystemController"]


class Health(msgspec.Struct):
    """`ok` when the database and Redis both answer."""

    status: str
    database: str
    redis: str


class Ping(msgspec.Struct):
    """A constant answer."""

    ok: bool = True


class SystemController(Controller):
    """Operational routes; no authentication."""

    tags = ["System"]

    @get("/health", operation_id="system/health")
    async def health(self, request: Request[Any, Any, Any], db_session: AsyncSession) -> Response[Health]:
        """Database and Redis reachability (503 when either fails)."""
        try:
            await asyncio.wait_for(db_session.execute(text("SELECT 1")), 2)
            database = "ok"
        except Exception:  # noqa: BLE001 - any failure means unhealthy
            database = "unavailable"
        try:
            await asyncio.wait_for(services(request).redis.ping(), 1)
            redis = "ok"
        except Exception:  # noqa: BLE001
            redis = "unavailable"
        healthy = database == redis == "ok"
        return Response(Health("ok" if healthy else "degraded", database, redis), status_code=200 if healthy else 503)

    @get("/metrics", operation_id="system/metrics", media_type="text/plain", include_in_schema=False)
    async def metrics(self) -> Response[bytes]:
        """Prometheus metrics."""
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    @get("/ping", operation_id="system/ping", media_type=MediaType.JSON)
    async def ping(self) -> Ping:
        """A trivial JSON answer (the benchmark's baseline)."""
        return Ping()
