"""Liveness and readiness, Prometheus metrics (behind a bearer token), security.txt and a trivial JSON route."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from litestar import Controller, MediaType, Request, Response, get
from litestar.exceptions import NotFoundException
from litestar.openapi.datastructures import ResponseSpec
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from app.domain.events.ignored import ignored_report_metrics
from app.host_layout import API_LIVENESS_PATH, API_READINESS_PATH
from app.lib.api_error import ApiError
from app.lib.auth import services
from app.lib.dependencies import DbSession
from app.lib.errors import RETRY_AFTER_SECONDS
from app.lib.hashing import same

__all__ = ["Health", "Liveness", "SystemController", "security_txt_body"]

SECURITY_TXT = "/.well-known/security.txt"


class Health(msgspec.Struct):
    """Readiness: `ok` when the database and Redis answer, `degraded` while only what the API can do
    without is down (Redis: limits are then kept in each worker), `unavailable` without the database."""

    status: str
    database: str
    redis: str
    degraded: list[str]


class Liveness(msgspec.Struct):
    """The process answers."""

    status: str = "ok"


class Ping(msgspec.Struct):
    """A constant answer."""

    ok: bool = True


def security_txt_body(contact: str, days: int, now: datetime | None = None) -> str:
    """RFC 9116's fields: each contact (comma-separated in the setting), and an Expires `days` ahead."""
    expires = (now or datetime.now(UTC)) + timedelta(days=days)
    contacts = [c.strip() for c in contact.split(",") if c.strip()]
    return "".join(f"Contact: {c}\n" for c in contacts) + (
        f"Expires: {expires.strftime('%Y-%m-%dT%H:%M:%SZ')}\nPreferred-Languages: en\n")


_READINESS_RESPONSES = {
    503: ResponseSpec(Health, description="The database does not answer: retry after Retry-After seconds")}


async def _answers(check: Awaitable[Any], timeout: float) -> bool:
    try:
        await asyncio.wait_for(check, timeout)
    except Exception:  # noqa: BLE001 - any failure means it does not answer
        return False
    return True


async def _readiness(request: Request[Any, Any, Any], db_session: DbSession) -> Response[Health]:
    database, redis = await asyncio.gather(_answers(db_session.execute(text("SELECT 1")), 2),
                                           _answers(services(request).redis.ping(), 1))
    degraded = [] if redis else ["redis"]
    status = ("degraded" if degraded else "ok") if database else "unavailable"
    health = Health(status, "ok" if database else "unavailable", "ok" if redis else "unavailable", degraded)
    if database:
        return Response(health)
    return Response(health, status_code=503, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


class SystemController(Controller):
    """Operational routes; no authentication (metrics ask for the deploy's bearer token)."""

    tags = ["System"]

    @get(API_LIVENESS_PATH, operation_id="system/health-live")
    async def live(self) -> Liveness:
        """Liveness: the process answers (it asks nothing of the database or Redis)."""
        return Liveness()

    @get(API_READINESS_PATH, operation_id="system/health-ready", responses=_READINESS_RESPONSES)
    async def ready(self, request: Request[Any, Any, Any], db_session: DbSession) -> Response[Health]:
        """Readiness: 200 while the database answers (`degraded` lists what is down but done without, i.e.
        Redis), 503 with Retry-After when it does not."""
        return await _readiness(request, db_session)

    @get("/health", operation_id="system/health", responses=_READINESS_RESPONSES)
    async def health(self, request: Request[Any, Any, Any], db_session: DbSession) -> Response[Health]:
        """Readiness, as /health/ready (kept for the checks that already call it)."""
        return await _readiness(request, db_session)

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
