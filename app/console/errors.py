"""The console's answers to exceptions: an HTML page with the API's message and status, or the sign-in page."""

from __future__ import annotations

from typing import Any

from litestar import MediaType, Request, Response
from litestar.response import Redirect

from app.console.auth import NotSignedIn, login_url
from app.console.render import api_error, page
from app.lib.errors import exception_handlers

__all__ = ["console_exception_handlers"]


def _not_signed_in(request: Request[Any, Any, Any], exc: NotSignedIn) -> Response[Any]:
    return Redirect(login_url(exc.next_path), status_code=303)


def _error_page(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """The API's status and message for `exc` on a page of its own: never a traceback."""
    status, message, headers = api_error(request, exc)
    html = page("error.html.j2", user=None, nav=[], status=status, error=message, flash=None, path=request.url.path)
    return Response(html, status_code=status, media_type=MediaType.HTML, headers=headers)


# Every exception type the API handles, so that none under /console falls through to the API's JSON answer.
console_exception_handlers: dict[Any, Any] = {
    **{exc_type: _error_page for exc_type in exception_handlers},
    NotSignedIn: _not_signed_in,
}
