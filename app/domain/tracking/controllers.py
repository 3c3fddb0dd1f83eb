"""The tracking routes: the pixel (`/t/o/{token}`) and the redirect (`/t/c/{token}`), reached by readers without
credentials. Each records an event on the email its token names while the email is kept; a token that was
changed is refused with 404, and the redirect sends nobody anywhere its token does not name."""

from __future__ import annotations

import base64
import logging
from typing import Any

from litestar import Controller, Request, Response, get
from litestar.params import FromPath
from litestar.response import Redirect
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.tenancy import scope_to_team
from app.domain.emails import repository
from app.domain.events.recorder import Event, record_events, summary_of
from app.domain.tracking.links import CLICK_PATH, OPEN_PATH, Opened, location, read_click, read_open, signer
from app.lib.anonymous_limits import limit_per_ip
from app.lib.api_error import ApiError
from app.lib.auth import client_ip
from app.lib.auth import services as app_services
from app.lib.dependencies import DbSession
from app.lib.signed_links import BadLink

__all__ = ["TrackingController"]

PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
_MAX_USER_AGENT = 512
logger = logging.getLogger("postyard.tracking")
_NO_STORE = {"Cache-Control": "no-store, private", "Referrer-Policy": "no-referrer"}


def _refused() -> ApiError:
    return ApiError(404, "not_found", "This tracking link is not valid")


async def _record(request: Request[Any, Any, Any], db: AsyncSession, opened: Opened, kind: str,
                  extra: dict[str, str]) -> None:
    """The event, committed here, while the email is kept. The reader gets the image or the link whatever
    happens: nothing is recorded when the address is over its budget, the email is gone, or the database or the
    limiter fails (logged)."""
    try:
        # per address and email: a mail provider's image proxy fetches for many readers from few addresses
        await limit_per_ip(request, f"tracking:{opened.email_id}")
    except ApiError:
        return
    except Exception:
        logger.exception("tracking: the rate limiter failed; the %s event is not recorded", kind)
        return
    try:
        await scope_to_team(db, opened.team_id)
        row = await repository.find_email(db, opened.team_id, opened.email_id)
        if row is None:
            return
        detail = {"ip": client_ip(request), "user_agent": request.headers.get("user-agent", "")[:_MAX_USER_AGENT],
                  **extra}
        await record_events(db, [Event(summary_of(row, opened.team_id), kind, detail=detail)],
                            set_last_event=False)
        await db.commit()
    except (SQLAlchemyError, OSError):
        logger.exception("tracking: the %s event of email %s is not recorded", kind, opened.email_id)
        await db.rollback()


class TrackingController(Controller):
    """Opens and clicks of tracked emails."""

    path = "/"
    include_in_schema = False

    @get(f"{OPEN_PATH}/{{token:str}}", operation_id="tracking/open")
    async def pixel(self, request: Request[Any, Any, Any], token: FromPath[str],
                    db_session: DbSession) -> Response[bytes]:
        """A 1x1 GIF; the email's `opened` event."""
        try:
            opened = read_open(signer(app_services(request).keyring), token)
        except (BadLink, ValueError, TypeError):
            raise _refused() from None
        await _record(request, db_session, opened, "opened", {})
        return Response(PIXEL, media_type="image/gif", headers=_NO_STORE)

    @get(f"{CLICK_PATH}/{{token:str}}", operation_id="tracking/click")
    async def click(self, request: Request[Any, Any, Any], token: FromPath[str], db_session: DbSession) -> Redirect:
        """A redirect to the link the sender wrote; the email's `clicked` event."""
        try:
            clicked = read_click(signer(app_services(request).keyring), token)
        except (BadLink, ValueError, TypeError):
            raise _refused() from None
        await _record(request, db_session, clicked, "clicked", {"link": clicked.url})
        return Redirect(location(clicked.url), status_code=302, headers=_NO_STORE)
