"""A forgotten password: ask for a reset link by email, then set a new password with it."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, Response, get, post
from litestar.datastructures import Cookie
from litestar.params import FromQuery, QueryParameter

from app.console.auth import check_origin
from app.console.forms import form_data, parse_form
from app.console.render import redirect, render, render_error
from app.domain.accounts import password_reset
from app.domain.accounts.schemas import PasswordReset, PasswordResetRequest
from app.lib.anonymous_limits import limit_per_ip
from app.lib.api_error import ApiError
from app.lib.auth import SESSION_COOKIE, client_ip
from app.lib.auth import services as app_services
from app.lib.dependencies import DbSession

__all__ = ["PASSWORD_RESET_HANDLERS"]

_REQUEST = "password_reset.html.j2"
_CONFIRM = "password_reset_confirm.html.j2"
Token = Annotated[str, QueryParameter(min_length=1, max_length=100)]


@get("/password-reset", name="console:password-reset")
async def reset_page(request: Request[Any, Any, Any], m: FromQuery[str | None] = None) -> Response[Any]:
    """The form asking for the account's address (or, once sent, the same answer whoever asked)."""
    return await render(request, None, _REQUEST, enabled=password_reset.enabled(app_services(request)),
                        sent=m == "sent", email="")


@post("/password-reset", name="console:password-reset-submit")
async def request_reset(request: Request[Any, Any, Any], db_session: DbSession) -> Response[Any]:
    """Send a reset link if the address has an account; the answer is the same either way."""
    data = await form_data(request)
    svc = app_services(request)
    try:
        check_origin(request)
        await limit_per_ip(request, "password-reset")
        form = parse_form(data, PasswordResetRequest)
        await password_reset.request_reset(db_session, svc, form.email, request.url.netloc, client_ip(request))
    except ApiError as exc:
        return await render_error(request, None, _REQUEST, exc, enabled=password_reset.enabled(svc), sent=False,
                                  email=data.get("email", ""))
    return await redirect(request, None, db_session, "/console/password-reset?m=sent")


@get("/password-reset/confirm", name="console:password-reset-confirm")
async def confirm_page(request: Request[Any, Any, Any], db_session: DbSession, token: Token) -> Response[Any]:
    """The new-password form of a reset link, or why the link no longer works."""
    refused = await password_reset.refusal(db_session, token)
    if refused is not None:
        return await render_error(request, None, _CONFIRM, refused, token="", usable=False)
    return await render(request, None, _CONFIRM, token=token, usable=True)


@post("/password-reset/confirm", name="console:password-reset-confirm-submit")
async def confirm(request: Request[Any, Any, Any], db_session: DbSession) -> Response[Any]:
    """Set the new password with the link's token (used up), sign every session out, and send the user to sign in:
    the link proves the mailbox, not a second factor, so it never opens a session by itself."""
    data = await form_data(request)
    token = data.get("token", "")
    try:
        check_origin(request)
        await limit_per_ip(request, "password-reset-confirm")
        form = parse_form(data, PasswordReset)
        await password_reset.reset_password(db_session, form.token, form.new_password, client_ip(request))
    except ApiError as exc:
        usable = exc.status_code != 410 and await password_reset.refusal(db_session, token) is None
        return await render_error(request, None, _CONFIRM, exc, token=token if usable else "", usable=usable)
    return await redirect(request, None, db_session, "/console/login?m=password-reset",
                          cookies=[Cookie(key=SESSION_COOKIE, value="", max_age=0, path="/")])


PASSWORD_RESET_HANDLERS = [reset_page, request_reset, confirm_page, confirm]
