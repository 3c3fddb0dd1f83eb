"""Prometheus metrics and the middleware that counts requests."""

from __future__ import annotations

import time

from litestar.types import ASGIApp, Message, Receive, Scope, Send
from prometheus_client import Counter, Histogram

__all__ = ["LOGIN_FAILURES", "RATE_LIMIT_FALLBACKS", "REQUESTS", "metrics_middleware"]

REQUESTS = Histogram(
    "postyard_http_request_duration_seconds", "HTTP request duration", ["method", "route", "status"]
)
LOGIN_FAILURES = Counter("postyard_login_failures_total", "Failed login attempts")
RATE_LIMIT_FALLBACKS = Counter(
    "postyard_rate_limit_fallback_total", "Rate-limit decisions taken in process because Redis was down"
)


def metrics_middleware(app: ASGIApp) -> ASGIApp:
    """Observe each HTTP request's duration by method, route template and status."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def observe(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await app(scope, receive, observe)
        finally:
            handler = scope.get("route_handler")
            route = next(iter(handler.paths), "unmatched") if handler is not None else "unmatched"
            REQUESTS.labels(scope.get("method", ""), route, str(status)).observe(time.perf_counter() - started)

    return middleware
