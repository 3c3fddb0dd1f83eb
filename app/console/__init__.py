"""The web console: server-rendered pages under /console, on the API's services, sessions and team scoping."""

from __future__ import annotations

from pathlib import Path

from litestar import Router
from litestar.datastructures import CacheControlHeader
from litestar.di import Provide
from litestar.static_files import create_static_files_router
from litestar.types import ControllerRouterHandler

from app.console.api_keys import API_KEY_HANDLERS
from app.console.auth import provide_console_principal, provide_console_user
from app.console.domains import DOMAIN_HANDLERS
from app.console.emails import EMAIL_HANDLERS
from app.console.errors import console_exception_handlers
from app.console.operator import OPERATOR_HANDLERS
from app.console.overview import OVERVIEW_HANDLERS
from app.console.password_reset import PASSWORD_RESET_HANDLERS
from app.console.sign_in import SIGN_IN_HANDLERS
from app.console.smtp import SMTP_HANDLERS
from app.console.suppressions import SUPPRESSION_HANDLERS
from app.console.team import TEAM_HANDLERS
from app.console.webhooks import WEBHOOK_HANDLERS
from app.lib.headers import CONSOLE_PATH

__all__ = ["HANDLERS", "console_router"]

STATIC = Path(__file__).parent / "static"

# Each page module's handlers; a new page module adds its list here.
HANDLERS: list[ControllerRouterHandler] = [*SIGN_IN_HANDLERS, *OVERVIEW_HANDLERS, *EMAIL_HANDLERS, *WEBHOOK_HANDLERS,
                                           *SUPPRESSION_HANDLERS, *TEAM_HANDLERS,
                                           *DOMAIN_HANDLERS, *API_KEY_HANDLERS, *SMTP_HANDLERS, *OPERATOR_HANDLERS,
                                           *PASSWORD_RESET_HANDLERS]


def console_router() -> Router:
    """The console's routes with its dependencies (`console_user`, `principal`), its HTML error pages and its
    static files under /console/static."""
    return Router(
        path=CONSOLE_PATH,
        route_handlers=[*HANDLERS, create_static_files_router(path="/static", directories=[STATIC],
                                                              name="console:static",
                                                              cache_control=CacheControlHeader(max_age=3600))],
        dependencies={"console_user": Provide(provide_console_user), "principal": Provide(provide_console_principal)},
        exception_handlers=console_exception_handlers,
        include_in_schema=False,
    )
