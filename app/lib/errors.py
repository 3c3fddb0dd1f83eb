"""Errors in Resend's shape `{"statusCode", "name", "message"}`: never a 500 for bad input, a 503 while the
database is unreachable."""

from __future__ import annotations

import logging
from typing import Any

import msgspec
from litestar import MediaType, Request, Response
from litestar.exceptions import (
    HTTPException,
    MethodNotAllowedException,
    NotAuthorizedException,
    NotFoundException,
    PermissionDeniedException,
    ValidationException,
)
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR
from sqlalchemy.exc import DBAPIError, DisconnectionError, IntegrityError
from sqlalchemy.exc import TimeoutError as PoolTimeout

__all__ = ["RETRY_AFTER_SECONDS", "ApiError", "ErrorBody", "database_unavailable", "exception_handlers"]

logger = logging.getLogger("postyard.errors")

_NAMES = {
    400: "invalid_parameter",
    401: "missing_api_key",
    403: "invalid_api_key",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limit_exceeded",
    503: "service_unavailable",
}


class ErrorBody(msgspec.Struct):
    """The error body of every route."""

    statusCode: int  # noqa: N815
    name: str
    message: str


class ApiError(HTTPException):
    """An error with a machine-readable name."""

    def __init__(self, status_code: int, name: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(status_code=status_code, detail=message, headers=headers)
        self.name = name


def _body(status: int, name: str, message: str, headers: dict[str, str] | None = None) -> Response[Any]:
    return Response(
        content=ErrorBody(statusCode=status, name=name, message=message),
        status_code=status,
        media_type=MediaType.JSON,
        headers=headers,
    )


def _validation_message(exc: ValidationException) -> str:
    extra = exc.extra if isinstance(exc.extra, list) else []
    parts = [f"{e.get('key', 'body')}: {e.get('message', '')}" for e in extra if isinstance(e, dict)]
    return "; ".join(parts) or str(exc.detail) or "Invalid input"


def _http(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    status = exc.status_code
    if isinstance(exc, ValidationException) or status == 400:
        return _body(422, "validation_error", _validation_message(exc) if isinstance(exc, ValidationException)
                     else str(exc.detail))
    name = getattr(exc, "name", None) or _NAMES.get(status, "application_error")
    return _body(status, name, str(exc.detail), exc.headers)


def _integrity(request: Request[Any, Any, Any], exc: IntegrityError) -> Response[Any]:
    return _body(409, "conflict", "A resource with these values already exists")


# SQLSTATE classes of a database that is unreachable for now: connection exceptions (08), insufficient
# resources (53, e.g. too many connections), operator intervention (57P: shutting down, starting up) and
# a statement cancelled by POSTYARD_DATABASE_STATEMENT_TIMEOUT (57014: the database is overloaded).
_UNAVAILABLE_SQLSTATES = ("08", "53", "57P", "57014")
RETRY_AFTER_SECONDS = 5


def database_unavailable(exc: Exception) -> bool:
    """Whether `exc` says the database is down or restarting, not that the request or the code is wrong."""
    # Refused, or timed out connecting or waiting for an answer (TimeoutError is an OSError); no pooled
    # connection free within POSTYARD_DATABASE_POOL_TIMEOUT; a pooled connection lost and not replaced.
    if isinstance(exc, OSError | PoolTimeout | DisconnectionError):
        return True
    if not isinstance(exc, DBAPIError):
        return False
    sqlstate = getattr(exc.orig, "sqlstate", None) or ""
    return exc.connection_invalidated or sqlstate.startswith(_UNAVAILABLE_SQLSTATES)


# SQLSTATE class 22, data exception: the database refuses a value of the request (a NUL or an unpaired
# surrogate in text, a string longer than its column, a number out of range), so the request is wrong.
_DATA_EXCEPTIONS = {
    "22021": "A text value contains a character that cannot be stored (NUL)",
    "22P05": "A text value contains a character that cannot be stored",
    "22001": "A value is longer than its field allows",
    "22003": "A number is out of range",
}


def _refused_value(exc: Exception) -> str | None:
    """Why the database refused a value of the request, or None when `exc` is not about a value."""
    if not isinstance(exc, DBAPIError):
        return None
    sqlstate = getattr(exc.orig, "sqlstate", None) or ""
    if sqlstate.startswith("22"):
        return _DATA_EXCEPTIONS.get(sqlstate, "A value is not valid for its field")
    return "Invalid input" if "invalid input" in str(exc.orig).lower() else None


def _internal(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    if reason := _refused_value(exc):
        return _body(422, "validation_error", reason)
    if database_unavailable(exc):
        logger.warning("database unavailable", extra={"path": request.url.path, "error": type(exc).__name__})
        return _body(503, "service_unavailable", "The service is briefly unavailable; try again",
                     {"Retry-After": str(RETRY_AFTER_SECONDS)})
    logger.exception("unhandled error", extra={"path": request.url.path})
    return _body(HTTP_500_INTERNAL_SERVER_ERROR, "internal_server_error", "Internal server error")


exception_handlers: dict[Any, Any] = {
    HTTPException: _http,
    NotFoundException: _http,
    NotAuthorizedException: _http,
    PermissionDeniedException: _http,
    MethodNotAllowedException: _http,
    ValidationException: _http,
    IntegrityError: _integrity,
    Exception: _internal,
}
