"""Rendering console pages: the layout's common context, errors shown on the page, and POST-redirect-GET."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from litestar import MediaType, Request, Response
from litestar.datastructures import Cookie
from litestar.response import Redirect
from markupsafe import Markup, escape
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncSession

from app.console.auth import CSRF_FIELD, ConsoleUser
from app.lib.api_error import ApiError
from app.lib.auth import services
from app.lib.errors import ErrorBody, exception_handlers

__all__ = ["NAV", "NavItem", "api_error", "page", "redirect", "render", "render_error"]

logger = logging.getLogger("postyard.console")
TEMPLATES = Path(__file__).parent / "templates"
_FLASH_TTL = 120  # seconds a message waits for the page after a redirect


@dataclass(frozen=True)
class NavItem:
    """A link of the console's navigation."""

    label: str
    href: str
    operator_only: bool = False


NAV = (
    NavItem("Overview", "/console/"),
    NavItem("Emails", "/console/emails"),
    NavItem("Domains", "/console/domains"),
    NavItem("API keys", "/console/api-keys"),
    NavItem("SMTP", "/console/smtp"),
    NavItem("Webhooks", "/console/webhooks"),
    NavItem("Suppressions", "/console/suppressions"),
    NavItem("Team", "/console/team"),
    NavItem("Operator", "/console/operator", operator_only=True),
)

_env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["j2", "html"], default=True),
                   trim_blocks=True, lstrip_blocks=True)


def _current(item: NavItem, path: str) -> bool:
    if item.href == "/console/":
        return path in ("/console", "/console/")
    return path == item.href or path.startswith(item.href + "/")


def _nav(user: ConsoleUser | None, path: str) -> list[dict[str, Any]]:
    if user is None:
        return []
    return [{"label": i.label, "href": i.href, "current": _current(i, path)} for i in NAV
            if (user.is_operator or not i.operator_only) and (user.principal is not None or i.operator_only)]


def _flash_key(user: ConsoleUser) -> str:
    return f"console-flash:{user.session_id}"


async def _take_flash(request: Request[Any, Any, Any], user: ConsoleUser | None) -> str | None:
    """The message a redirect left for this page, read once; none while Redis is unreachable."""
    if user is None:
        return None
    try:
        value = await services(request).redis.getdel(_flash_key(user))
    except RedisError:
        logger.warning("flash message unavailable: Redis is unreachable")
        return None
    return value.decode() if value else None


def page(template: str, **context: Any) -> str:
    """A template rendered with exactly `context` (the layout's variables included by `render`)."""
    return _env.get_template(template).render(**context)


async def render(
    request: Request[Any, Any, Any], user: ConsoleUser | None, template: str, *, status: int = 200,
    headers: dict[str, str] | None = None, **context: Any,
) -> Response[str]:
    """A console page: `template` (from app/console/templates) with the layout's context (`user`, `team`,
    `csrf_token`, `csrf_input`, `nav`, `flash`, `error`, `can_write`) and `context`."""
    token = user.csrf_token if user else ""
    common: dict[str, Any] = {
        "user": user,
        "team": user.team_name if user else None,
        "can_write": user.can_write if user else False,
        "csrf_token": token,
        "csrf_input": Markup(f'<input type="hidden" name="{CSRF_FIELD}" value="{escape(token)}">'),
        "nav": _nav(user, request.url.path),
        "flash": await _take_flash(request, user),
        "error": None,
        "path": request.url.path,
    }
    html = page(template, **{**common, **context})
    return Response(html, status_code=status, media_type=MediaType.HTML, headers=headers)


async def render_error(
    request: Request[Any, Any, Any], user: ConsoleUser | None, template: str, exc: ApiError, **context: Any,
) -> Response[str]:
    """`template` again (typically the form that was sent) with the API's message for `exc`, under its status."""
    return await render(request, user, template, status=exc.status_code, headers=exc.headers,
                        error=str(exc.detail), **context)


async def redirect(
    request: Request[Any, Any, Any], user: ConsoleUser | None, db_session: AsyncSession | None, to: str,
    flash: str | None = None, cookies: list[Cookie] | None = None,
) -> Redirect:
    """POST-redirect-GET: commit the request's transaction (the app commits only 2xx answers by itself), leave
    `flash` for the next page of this session, and answer 303 See Other to `to` (setting `cookies`)."""
    if db_session is not None:
        await db_session.commit()
    if flash and user is not None:
        try:
            await services(request).redis.set(_flash_key(user), flash.encode(), ex=_FLASH_TTL)
        except RedisError:
            logger.warning("flash message dropped: Redis is unreachable")
    return Redirect(to, status_code=303, cookies=cookies)


def api_error(request: Request[Any, Any, Any], exc: Exception) -> tuple[int, str, dict[str, str] | None]:
    """The status, message and headers the API answers for `exc` (its exception handlers decide)."""
    handler = next((h for t, h in exception_handlers.items() if t is not Exception and isinstance(exc, t)),
                   exception_handlers[Exception])
    response = handler(request, exc)
    body = response.content
    message = body.message if isinstance(body, ErrorBody) else "Something went wrong"
    headers = {k: v for k, v in (response.headers or {}).items() if k.lower() == "retry-after"}
    return response.status_code, message, headers or None
