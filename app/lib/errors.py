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
from sqlalchemy.exc import DBAPIError, IntegrityError

from app.lib.api_error import ApiError, database_unavailable

__all__ = ["RETRY_AFTER_SECONDS", "ErrorBody", "exception_handlers"]

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


def _http(request: Request[Any, Any, Any], exc: HTTPException | ApiError) -> Response[Any]:
    status = exc.status_code
    if isinstance(exc, ValidationException) or status == 400:
        return _body(422, "validation_error", _validation_message(exc) if isinstance(exc, ValidationException)
                     else str(exc.detail))
    name = getattr(exc, "name", None) or _NAMES.get(status, "application_error")
    return _body(status, name, str(exc.detail), exc.headers)


def _integrity(request: Request[Any, Any, Any], exc: IntegrityError) -> Response[Any]:
    return _body(409, "conflict", "A resource with these values already exists")


RETRY_AFTER_SECONDS = 5


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
    ApiError: _http,
    HTTPException: _http,
    NotFoundException: _http,
    NotAuthorizedException: _http,
    PermissionDeniedException: _http,
    MethodNotAllowedException: _http,
    ValidationException: _http,
    IntegrityError: _integrity,
    Exception: _internal,
}
