"""Security headers on every response: a CSP that allows nothing for the JSON API, its own for the docs UI and
the console."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from litestar.routes import HTTPRoute
from litestar.types import Message, Scope

from app.config import Settings

__all__ = ["API_CSP", "CONSOLE_CSP", "CONSOLE_PATH", "DOCS_CSP", "DOCS_PATH", "EMAIL_PREVIEW_CSP",
           "security_headers_hook"]

DOCS_PATH = "/docs"
# The JSON API loads nothing and is never framed.
API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
# The docs UI: its scripts, styles, images and the schema from this origin only; no inline script, no eval.
# Swagger UI's stylesheet draws its icons as data: SVGs, hence `img-src data:`.
DOCS_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            "connect-src 'self'; font-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
CONSOLE_PATH = "/console"
# The console: its own scripts, styles and images only (QR codes are data: images), forms posted to itself, the
# sandboxed email preview framed from itself; no inline script or style, no eval.
CONSOLE_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
               "frame-src 'self'; frame-ancestors 'none'; base-uri 'none'")
# An email's HTML shown in the console's sandboxed frame: inline styles and data: images only, no script, no
# remote load, framed by the console alone (its handler sets this and X-Frame-Options itself; kept below).
EMAIL_PREVIEW_CSP = ("default-src 'none'; img-src data:; style-src 'unsafe-inline'; sandbox; "
                     "frame-ancestors 'self'; base-uri 'none'; form-action 'none'")
HSTS_MAX_AGE = 63072000  # two years, what preload lists ask for


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + "/")


def _csp(path: str) -> str:
    if _under(path, CONSOLE_PATH):
        return CONSOLE_CSP
    return DOCS_CSP if _under(path, DOCS_PATH) else API_CSP


def _allow(scope: Scope) -> bytes | None:
    """The methods of the path an OPTIONS request matched. Litestar's own Allow can miss some: its OPTIONS
    handler keeps the route as it was when the first handler of the path registered."""
    handler = scope.get("route_handler")
    if scope.get("method") != "OPTIONS" or handler is None:
        return None
    paths = handler.paths
    methods = {m for route in scope["app"].routes if isinstance(route, HTTPRoute) and route.path in paths
               for m in route.methods}
    return ", ".join(sorted(methods)).encode() if methods else None


def security_headers_hook(settings: Settings) -> Callable[[Message, Scope], Awaitable[None]]:
    """A `before_send` hook adding the rate-limit headers of the request's decision and the security
    headers (a header the handler set itself, e.g. a cacheable asset's Cache-Control, is kept), and
    completing the Allow header of OPTIONS answers."""
    hsts = f"max-age={HSTS_MAX_AGE}; includeSubDomains" + ("; preload" if settings.hsts_preload else "")
    common = [
        (b"strict-transport-security", hsts.encode()),
        (b"x-content-type-options", b"nosniff"),
        (b"x-frame-options", b"DENY"),
        (b"referrer-policy", b"no-referrer"),
        (b"cache-control", b"no-store"),
    ]

    async def add_headers(message: Message, scope: Scope) -> None:
        if message["type"] != "http.response.start":
            return
        headers = list(message.get("headers", []))
        if (allow := _allow(scope)) is not None:
            headers = [(name, allow if name.lower() == b"allow" else value) for name, value in headers]
        present = {name.lower() for name, _ in headers}
        decision = scope.get("state", {}).get("ratelimit")
        if decision is not None:
            headers += [(k.encode(), v.encode()) for k, v in decision.headers().items() if k.encode() not in present]
        extra = [*common, (b"content-security-policy", _csp(scope.get("path", "")).encode())]
        message["headers"] = headers + [(name, value) for name, value in extra if name not in present]

    return add_headers
