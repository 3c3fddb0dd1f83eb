"""Refuse, with 422 before any handler runs, text PostgreSQL cannot store: NUL and unpaired surrogates."""

from __future__ import annotations

import re
from typing import Any

from litestar import Request
from litestar.exceptions import SerializationException

from app.lib.api_error import ApiError

__all__ = ["refuse_unstorable_text", "unstorable"]

_SURROGATE = re.compile("[\ud800-\udfff]")
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def unstorable(text: str) -> str | None:
    """Why PostgreSQL would refuse `text` as a text value, or None when it would store it."""
    if "\x00" in text:
        return "contains a NUL character"
    if not text.isascii() and _SURROGATE.search(text):
        return "contains an unpaired surrogate"
    return None


def _first_unstorable(value: Any, where: str) -> str | None:
    """`where: reason` for the first string (or object key) in a decoded JSON value that cannot be stored."""
    stack = [(value, where)]
    while stack:
        item, at = stack.pop()
        if isinstance(item, str):
            if reason := unstorable(item):
                return f"{at}: {reason}"
        elif isinstance(item, dict):
            for key, child in item.items():
                if isinstance(key, str) and (reason := unstorable(key)):
                    return f"{at}: a key {reason}"
                stack.append((child, f"{at}.{key}"))
        elif isinstance(item, list):
            stack.extend((child, f"{at}[{i}]") for i, child in enumerate(item))
    return None


def _refuse(reason: str) -> ApiError:
    return ApiError(422, "validation_error", reason)


async def refuse_unstorable_text(request: Request[Any, Any, Any]) -> None:
    """Check path and query parameters, headers and a JSON body (decoded once, as the handler will use it)."""
    for name, value in request.path_params.items():
        if isinstance(value, str) and (reason := unstorable(value)):
            raise _refuse(f"path parameter {name}: {reason}")
    for name, value in request.query_params.multi_items():
        if reason := unstorable(name) or unstorable(value):
            raise _refuse(f"query parameter {name!r}: {reason}")
    for name, value in request.headers.items():
        if "\x00" in value:
            raise _refuse(f"header {name}: contains a NUL character")
    if reason := await _body_reason(request):
        raise _refuse(reason)


async def _body_reason(request: Request[Any, Any, Any]) -> str | None:
    if request.method not in _BODY_METHODS or "data" not in request.route_handler.parsed_fn_signature.parameters:
        return None
    if not await request.body():
        return None
    try:
        # Litestar decodes a handler's `data` as JSON whatever the content type, and keeps the result.
        decoded = await request.json()
    except SerializationException:
        return None  # malformed JSON: the handler's own decoding answers it
    return _first_unstorable(decoded, "body")
