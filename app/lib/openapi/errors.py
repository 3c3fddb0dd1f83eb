"""Every error a route can answer, documented once: derived from what each route handler needs."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from litestar import Litestar
from litestar.openapi.spec import (
    Components,
    OpenAPIHeader,
    OpenAPIMediaType,
    OpenAPIResponse,
    Reference,
    Schema,
    SecurityRequirement,
    SecurityScheme,
)
from litestar.openapi.spec.enums import OpenAPIType

from app.lib.auth import SESSION_COOKIE
from app.lib.openapi.routes import Served, operations

__all__ = ["AUTHENTICATIONS", "ERROR_DESCRIPTIONS", "EXTRA_ERRORS", "PUBLIC", "SECURED", "SECURITY_SCHEMES",
           "SESSION_ONLY", "Authentication", "RouteFacts", "document_errors", "error_codes"]

ERROR_SCHEMA = "ErrorBody"
SECURITY_SCHEMES = {
    "apiKey": SecurityScheme(type="http", scheme="bearer", description="An API key: sk_live_... or sk_test_..."),
    "session": SecurityScheme(type="apiKey", security_scheme_in="cookie", name=SESSION_COOKIE,
                              description="A console session (from /auth/login); writes also need the "
                                          "X-CSRF-Token header of the session"),
}
SECURED: list[SecurityRequirement] = [{"apiKey": []}, {"session": []}]
SESSION_ONLY: list[SecurityRequirement] = [{"session": []}]
PUBLIC: list[SecurityRequirement] = []


@dataclass(frozen=True)
class Authentication:
    """What a route that depends on an authenticating provider declares and can answer."""

    security: list[SecurityRequirement]
    errors: frozenset[int]


# Dependency providers that authenticate the caller, by function name (the routes name them in their
# `dependencies`): who may call, and the refusals they answer (missing or wrong credentials 401, valid
# ones that may not do this 403, over the caller's rate limit 429).
AUTHENTICATIONS = {
    "provide_principal": Authentication(SECURED, frozenset({401, 403, 429})),
    "provide_sending_principal": Authentication(SECURED, frozenset({401, 403, 429})),
    "provide_session_user": Authentication(SESSION_ONLY, frozenset({401, 403, 429})),
    "provide_operator": Authentication(SESSION_ONLY, frozenset({401, 403, 429})),
}
# Codes a handler answers itself beyond what the rules below derive, by operation id.
EXTRA_ERRORS: dict[str, frozenset[int]] = {
    "audit-logs/list": frozenset({404}),  # the `after` cursor names no entry
    "auth/register": frozenset({403}),  # sign-up closed, or an invite needed or refused
    "auth/login": frozenset({401}),
    "auth/login-totp": frozenset({401}),
    "auth/password-reset": frozenset({404}),  # password reset by email is off (no system sender)
    "auth/password-reset-confirm": frozenset({410}),  # the link was used, has expired or is unknown
    "invites/accept": frozenset({404, 429}),  # the invite token names no invite; limited per address
    "system/security-txt": frozenset({404}),  # no security contact configured
}
ERROR_DESCRIPTIONS = {
    401: "No credentials, or credentials that are not valid (anymore)",
    403: "Valid credentials that may not do this: a revoked or restricted key, a key from a disallowed address, "
         "a missing role or CSRF token",
    404: "No such resource (for this team)",
    409: "Conflicts with what is stored: a duplicate, or a change the resource's state forbids",
    410: "A single-use link that was used already, has expired or was never issued",
    413: "The request body is larger than this route accepts",
    422: "A parameter or the body is malformed or fails validation",
    429: "Too many requests: retry after Retry-After seconds",
    503: "The database is briefly unavailable: retry after Retry-After seconds",
}
_RETRY_AFTER = {"Retry-After": OpenAPIHeader(schema=Schema(type=OpenAPIType.INTEGER),
                                              description="Seconds to wait before trying again")}
_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True)
class RouteFacts:
    """What decides the errors of one operation."""

    method: str
    authentication: Authentication | None
    database: bool  # reaches PostgreSQL (directly or through authentication)
    body: bool
    path_params: bool
    query_params: bool
    extra: frozenset[int] = frozenset()


def error_codes(facts: RouteFacts) -> set[int]:
    """The error status codes an operation can answer."""
    codes = set(facts.extra)
    if facts.authentication is not None:
        codes |= facts.authentication.errors
    elif facts.body:
        codes.add(429)  # unauthenticated routes that take a body (sign-up, login...) are limited per address
    if facts.database:
        codes.add(503)
        if facts.method in _WRITES:
            codes.add(409)
    if facts.path_params and facts.authentication is not None:
        codes.add(404)
    if facts.body:
        codes |= {413, 422}
    if facts.path_params or facts.query_params:
        codes.add(422)
    return codes


def _facts(served: Served) -> RouteFacts:
    handler, route, method, operation = served
    parameters = handler.parsed_fn_signature.parameters
    providers = handler.resolve_dependencies()
    used = [getattr(providers[name].dependency, "__name__", "") for name in parameters if name in providers]
    authentication = next((AUTHENTICATIONS[name] for name in used if name in AUTHENTICATIONS), None)
    locations = {getattr(p, "param_in", None) for p in operation.parameters or []}
    return RouteFacts(
        method=method,
        authentication=authentication,
        database=authentication is not None or "db_session" in parameters,
        body="data" in parameters,
        path_params=bool(route.path_parameters),
        query_params="query" in locations,
        extra=EXTRA_ERRORS.get(operation.operation_id or "", frozenset()),
    )


def _error_response(code: int) -> OpenAPIResponse:
    return OpenAPIResponse(
        description=ERROR_DESCRIPTIONS[code],
        content={"application/json": OpenAPIMediaType(schema=Reference(ref=f"#/components/schemas/{ERROR_SCHEMA}"))},
        headers=dict(_RETRY_AFTER) if code in (429, 503) else None,
    )


def _error_schema() -> Schema:
    return Schema(
        type=OpenAPIType.OBJECT,
        required=["statusCode", "name", "message"],
        properties={
            "statusCode": Schema(type=OpenAPIType.INTEGER, description="The HTTP status code"),
            "name": Schema(type=OpenAPIType.STRING, description="A machine-readable reason, e.g. not_found"),
            "message": Schema(type=OpenAPIType.STRING, description="What went wrong, for people"),
        },
        description="The body of every error (Resend's shape)",
    )


def document_errors(app: Litestar, ignore: Iterable[str] = ("400",)) -> None:
    """Replace the framework's generic error entries (`ignore`: this API answers 422, never 400) with each
    operation's real error codes and the ErrorBody schema, and state each operation's security."""
    schema = app.openapi_schema
    schema.components = schema.components or Components()
    schema.components.schemas = {**(schema.components.schemas or {}), ERROR_SCHEMA: _error_schema()}
    schema.components.security_schemes = {**(schema.components.security_schemes or {}), **SECURITY_SCHEMES}
    schema.security = None
    for served in operations(app):
        operation = served.operation
        facts = _facts(served)
        responses = {k: v for k, v in (operation.responses or {}).items() if k not in ignore}
        if isinstance(no_content := responses.get("204"), OpenAPIResponse):
            no_content.content = None  # a 204 has no body, whatever the handler's return type says
        for code in sorted(error_codes(facts)):
            responses.setdefault(str(code), _error_response(code))
        for code in ("429", "503"):  # a handler's own body for these (the health checks') still says when to retry
            if isinstance(own := responses.get(code), OpenAPIResponse) and not own.headers:
                own.headers = dict(_RETRY_AFTER)
        operation.responses = dict(sorted(responses.items()))
        operation.security = facts.authentication.security if facts.authentication else PUBLIC
