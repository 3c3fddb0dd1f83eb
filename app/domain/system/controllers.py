"""Health, Prometheus metrics (behind a bearer token), security.txt and a trivial JSON route."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from litestar import Controller, MediaType, Request, Response, get
from litestar.exceptions import NotFoundException
from litestar.openapi.datastructures import ResponseSpec
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from app.domain.events.ignored import ignored_report_metrics
from app.lib.auth import services
from app.lib.dependencies import DbSession
from app.lib.errors import ApiError
from app.lib.hashing import same

__all__ = ["Health", "SystemController", "security_txt_body"]

SECURITY_TXT = "/.well-known/security.txt"


class Health(msgspec.Struct):
    """`ok` when the database and Redis both answer."""

    status: str
    database: str
    redis: str


class Ping(msgspec.Struct):
    """A constant answer."""

    ok: bool = True


def security_txt_body(contact: str, days: int, now: datetime | None = None) -> str:
    """RFC 9116's fields: each contact (comma-separated in the setting), and an Expires `days` ahead."""
    expires = (now or datetime.now(UTC)) + timedelta(days=days)
    contacts = [c.strip() for c in contact.split(",") if c.strip()]
    return "".join(f"Contact: {c}\n" for c in contacts) + (
        f"Expires: {expires.strftime('%Y-%m-%dT%H:%M:%SZ')}\nPreferred-Languages: en\n")


class SystemController(Controller):
    """Operational routes; no authentication (metrics ask for the deploy's bearer token)."""

    tags = ["System"]

    @get("/health", operation_id="system/health", responses={
        503: ResponseSpec(Health, description="The database or Redis does not answer")})
    async def health(self, request: Request[Any, Any, Any], db_session: DbSession) -> Response[Health]:
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
    async def metrics(self, request: Request[Any, Any, Any], db_session: DbSession) -> Response[bytes]:
        """Prometheus metrics, for the bearer of POSTYARD_METRICS_TOKEN; without one configured, no route."""
        token = services(request).settings.metrics_token
        if not token:
            raise NotFoundException()
        if not same(request.headers.get("authorization", ""), f"Bearer {token}"):
            raise ApiError(401, "unauthorized", "Metrics need the deploy's metrics token",
                           headers={"WWW-Authenticate": 'Bearer realm="metrics"'})
        body = generate_latest() + await ignored_report_metrics(db_session)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    @get(SECURITY_TXT, operation_id="system/security-txt", media_type=MediaType.TEXT)
    async def security_txt(self, request: Request[Any, Any, Any]) -> str:
        """How to report a vulnerability (RFC 9116)."""
        settings = services(request).settings
        if not settings.security_contact:
            raise NotFoundException()
        return security_txt_body(settings.security_contact, settings.security_txt_days)

    @get("/ping", operation_id="system/ping", media_type=MediaType.JSON)
    async def ping(self) -> Ping:
        """A trivial JSON answer (the benchmark's baseline)."""
        return Ping()
