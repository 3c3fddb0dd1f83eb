"""Every error a route can answer, documented once: derived from what each route handler needs."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from litestar import Litestar
from litestar.openapi.spec import (
    Components,
    OpenAPIHeader,
    OpenAPIMediaType,
    OpenAPIResponse,
    Operation,
    Reference,
    Schema,
    SecurityRequirement,
    SecurityScheme,
)
from litestar.openapi.spec.enums import OpenAPIType
from litestar.routes import HTTPRoute

from app.lib.auth import SESSION_COOKIE

__all__ = ["ERROR_DESCRIPTIONS", "PUBLIC", "SECURED", "SECURITY_SCHEMES", "RouteFacts", "document_errors",
           "error_codes"]

ERROR_SCHEMA = "ErrorBody"
SECURITY_SCHEMES = {
    "apiKey": SecurityScheme(type="http", scheme="bearer", description="An API key: sk_live_... or sk_test_..."),
    "session": SecurityScheme(type="apiKey", security_scheme_in="cookie", name=SESSION_COOKIE,
                              description="A console session (from /auth/login); writes also need the "
                                          "X-CSRF-Token header of the session"),
}
SECURED: list[SecurityRequirement] = [{"apiKey": []}, {"session": []}]
PUBLIC: list[SecurityRequirement] = []
ERROR_DESCRIPTIONS = {
    401: "No credentials, or credentials that are not valid (anymore)",
    403: "Valid credentials that may not do this: a revoked or restricted key, a key from a disallowed address, "
         "a missing role or CSRF token",
    404: "No such resource (for this team)",
    409: "Conflicts with what is stored: a duplicate, or a change the resource's state forbids",
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
    authenticated: bool  # takes the `principal` dependency (API key or session, team rate limit)
    database: bool  # reaches PostgreSQL (directly or through authentication)
    body: bool
    path_params: bool
    query_params: bool
    extra: tuple[int, ...] = ()  # codes the handler raises itself, from its opt["errors"]


def error_codes(facts: RouteFacts) -> set[int]:
    """The error status codes an operation can answer."""
    codes = set(facts.extra)
    if facts.authenticated:
        codes |= {401, 403, 429}
    elif facts.body:
        codes.add(429)  # unauthenticated routes that take a body (sign-up, login...) are limited per address
    if facts.database:
        codes.add(503)
        if facts.method in _WRITES:
            codes.add(409)
    if facts.path_params and facts.authenticated:
        codes.add(404)
    if facts.body:
        codes |= {413, 422}
    if facts.path_params or facts.query_params:
        codes.add(422)
    return codes


def _facts(route: HTTPRoute, method: str, operation: Operation) -> RouteFacts:
    handler = route.route_handler_map[method][0]
    parameters = handler.parsed_fn_signature.parameters
    authenticated = "principal" in parameters
    locations = {getattr(p, "param_in", None) for p in operation.parameters or []}
    return RouteFacts(
        method=method,
        authenticated=authenticated,
        database=authenticated or "db_session" in parameters,
        body="data" in parameters,
        path_params=bool(route.path_parameters),
        query_params="query" in locations,
        extra=tuple(handler.opt.get("errors", ())),
    )


def _error_response(code: int) -> OpenAPIResponse:
    return OpenAPIResponse(
        description=ERROR_DESCRIPTIONS[code],
        content={"application/json": OpenAPIMediaType(schema=Reference(ref=f"#/components/schemas/{ERROR_SCHEMA}"))},
        headers=dict(_RETRY_AFTER) if code in (429, 503) else None,
    )


def _operations(app: Litestar) -> Iterator[tuple[HTTPRoute, str, Operation]]:
    paths = app.openapi_schema.paths or {}
    for route in app.routes:
        if not isinstance(route, HTTPRoute) or route.path_format not in paths:
            continue
        item = paths[route.path_format]
        for method in route.route_handler_map:
            operation = getattr(item, method.lower(), None)
            if operation is not None and route.route_handler_map[method][0].include_in_schema:
                yield route, method, operation


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
    for route, method, operation in _operations(app):
        facts = _facts(route, method, operation)
        responses = {k: v for k, v in (operation.responses or {}).items() if k not in ignore}
        for code in sorted(error_codes(facts)):
            responses.setdefault(str(code), _error_response(code))
        operation.responses = dict(sorted(responses.items()))
        operation.security = SECURED if facts.authenticated else PUBLIC
