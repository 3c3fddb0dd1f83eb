"""The app factory: `granian --interface asgi --factory app.asgi:create_app`."""

from __future__ import annotations

import asyncio
from typing import Any, cast

from advanced_alchemy.extensions.litestar import (
    AsyncSessionConfig,
    SQLAlchemyAsyncConfig,
    SQLAlchemyPlugin,
)
from granian.utils.proxies import wrap_asgi_with_proxy_headers
from litestar import Litestar
from litestar.datastructures import State
from litestar.openapi import OpenAPIConfig
from litestar.types import ASGIApp
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import async_sessionmaker

from app.config import Settings, get_settings
from app.console import console_router
from app.db.engines import create_engine
from app.domain.accounts.controllers import AuthController
from app.domain.api_keys.controllers import ApiKeyController
from app.domain.audit.controllers import AuditLogController
from app.domain.domains.controllers import DomainController
from app.domain.emails.accept_groups import AcceptGroups
from app.domain.emails.attachment_controllers import EmailAttachmentController
from app.domain.emails.controllers import EmailController
from app.domain.emails.metrics_controllers import EmailMetricsController
from app.domain.emails.share_controllers import SharedEmailController, ShareEmailController
from app.domain.operators.controllers import OperatorController
from app.domain.receiving.controllers import ReceivedEmailController
from app.domain.smtp.controllers import SmtpCredentialController
from app.domain.suppressions.controllers import SuppressionController
from app.domain.system.controllers import SystemController
from app.domain.teams.controllers import InviteController, TeamController
from app.domain.templates.controllers import TemplateController
from app.domain.tracking.controllers import TrackingController
from app.domain.webhooks.controllers import WebhookController
from app.lib.crypto import Keyring
from app.lib.errors import exception_handlers
from app.lib.headers import DOCS_PATH, security_headers_hook
from app.lib.logs import configure_logging, request_id_middleware
from app.lib.lookups import Lookups
from app.lib.metrics import metrics_middleware
from app.lib.openapi import SwaggerUIPlugin, document_api
from app.lib.ratelimit import SlidingWindowLimiter
from app.lib.state import Services
from app.lib.storable_text import refuse_unstorable_text
from app.lib.transactions import commit_before_send

__all__ = ["TRUSTED_PROXIES", "create_app", "create_served_app"]

# Who may tell the API a request's client by X-Forwarded-For: the API proxy on the same host (roles/api_proxy.py),
# which sets it to the address the load balancer's PROXY protocol named. Anyone else's header is ignored.
TRUSTED_PROXIES = "127.0.0.1"

def create_app(settings: Settings | None = None) -> Litestar:
    """Build the application from settings (read from the environment when not given)."""
    settings = settings or get_settings()
    configure_logging(settings.log_level)
    redis = Redis.from_url(settings.redis_url, socket_timeout=0.5, socket_connect_timeout=0.5)
    # Password and second-factor windows wait longer for Redis before falling back to counting in
    # each process: a host busy hashing passwords is exactly when the count must stay shared.
    credential_redis = Redis.from_url(settings.redis_url, socket_timeout=settings.credential_limit_timeout,
                                      socket_connect_timeout=0.5)
    services = Services(
        settings=settings,
        keyring=Keyring(settings.data_keys, settings.active_data_key_id),
        redis=redis,
        limiter=SlidingWindowLimiter(redis),
        credential_limiter=SlidingWindowLimiter(credential_redis, prefix="rl-cred"),
        lookups=Lookups(settings),
    )
    db_config = SQLAlchemyAsyncConfig(
        engine_instance=create_engine(settings.database_url, settings, "postyard-api", pool_size=10),
        session_config=AsyncSessionConfig(expire_on_commit=False),
        create_all=False,
    )
    # The scope key is only known once the config exists: each app in a process gets its own.
    db_config.before_send_handler = commit_before_send(db_config.session_scope_key)
    accept_groups = AcceptGroups(async_sessionmaker(db_config.get_engine(), expire_on_commit=False), settings)

    stop_following = asyncio.Event()
    following: list[asyncio.Task[None]] = []

    async def follow_lookup_changes(_: Any = None) -> None:
        following.append(asyncio.create_task(services.lookups.follow(db_config.get_engine(), stop_following)))

    async def close_connections(_: Any = None) -> None:
        stop_following.set()
        for task in following:
            task.cancel()  # also when it is still trying to reach the database
        await asyncio.gather(*following, return_exceptions=True)
        await redis.aclose()
        await credential_redis.aclose()
        # advanced-alchemy disposes its engine only under the default state key, which only the first app of
        # a process gets (the API suite builds many): dispose it here so no pooled connection is left open.
        await db_config.get_engine().dispose()

    app = Litestar(
        route_handlers=[SystemController, AuthController, TeamController, ApiKeyController, DomainController,
                        SmtpCredentialController, AuditLogController, EmailController, EmailAttachmentController,
                        ShareEmailController, SharedEmailController, EmailMetricsController, ReceivedEmailController,
                        SuppressionController, WebhookController, TemplateController, InviteController,
                        OperatorController, TrackingController, console_router()],
        plugins=[SQLAlchemyPlugin(config=db_config)],
        middleware=[metrics_middleware],
        before_send=[security_headers_hook(settings)],
        exception_handlers=exception_handlers,
        before_request=refuse_unstorable_text,
        request_max_body_size=settings.max_body_bytes,
        state=State({"services": services, "accept_groups": accept_groups}),
        on_startup=[follow_lookup_changes],
        on_shutdown=[close_connections],
        openapi_config=OpenAPIConfig(
            title="Postyard API",
            version="0.1.0",
            description="Transactional mail: Resend-compatible emails, domains, API keys, suppressions and "
                        "webhooks, plus accounts, teams, SMTP credentials and the audit log.",
            path=DOCS_PATH,
            render_plugins=[SwaggerUIPlugin()],
        ),
        debug=settings.debug,
    )
    document_api(app)
    # Around routing, so that 404 and 405 for unknown paths carry a request id and are logged too.
    app.asgi_handler = request_id_middleware(app.asgi_handler)
    return app


def create_served_app() -> ASGIApp:
    """The application as granian serves it: the client of a request the API proxy passes on is the one it names."""
    return cast("ASGIApp", wrap_asgi_with_proxy_headers(create_app(), trusted_hosts=TRUSTED_PROXIES))
