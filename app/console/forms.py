"""Console forms: the posted fields, checked against the API's own request schemas (same rules, same messages)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, TypeVar
from urllib.parse import urlsplit

import msgspec
from litestar import Request

from app.lib.api_error import ApiError

__all__ = ["day_bounds", "form_data", "form_list", "parse_days", "parse_form", "safe_next"]

T = TypeVar("T", bound=msgspec.Struct)
_AT = re.compile(r"^(?P<message>.*) - at `\$\.(?P<field>[^`\[]+)[^`]*`$")
HOME = "/console/"


async def form_data(request: Request[Any, Any, Any]) -> dict[str, str]:
    """The posted text fields (the first value of each)."""
    form = await request.form()
    return {key: value for key, value in form.items() if isinstance(value, str)}


async def form_list(request: Request[Any, Any, Any], name: str) -> list[str]:
    """Every value posted under `name` (checkboxes, multiple selects), in order, empty ones left out."""
    form = await request.form()
    return [value for value in form.getall(name, []) if isinstance(value, str) and value != ""]


def _message(exc: msgspec.ValidationError) -> str:
    """`field: problem`, the shape the API gives its validation errors."""
    match = _AT.match(str(exc))
    return f"{match['field']}: {match['message']}" if match else str(exc)


def parse_form(data: dict[str, str], schema: type[T]) -> T:
    """The fields as the API's request struct `schema` (an empty field counts as absent); 422 like the API."""
    known = {f.encode_name for f in msgspec.structs.fields(schema)}  # not the form's own, e.g. its CSRF token
    present = {key: value for key, value in data.items() if value != "" and key in known}
    try:
        return msgspec.convert(present, schema, strict=False)
    except msgspec.ValidationError as exc:
        raise ApiError(422, "validation_error", _message(exc)) from None


def _day(value: str, name: str) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ApiError(422, "validation_error", f"{name} must be a date (YYYY-MM-DD)") from None


def parse_days(since: str, until: str) -> tuple[date | None, date | None]:
    """The first and last day a filter form asks for (YYYY-MM-DD; an empty field leaves that end open); 422 for a
    value that is not a date, or since after until."""
    first, last = _day(since, "since"), _day(until, "until")
    if first and last and first > last:
        raise ApiError(422, "validation_error", "since must not be after until")
    return first, last


def day_bounds(first: date | None, last: date | None) -> tuple[datetime | None, datetime | None]:
    """Whole UTC days from `first` to `last`, both included, as instants: from the start of `first` (inclusive)
    to the start of the day after `last` (exclusive)."""
    return (None if first is None else datetime.combine(first, time(), UTC),
            None if last is None else datetime.combine(last + timedelta(days=1), time(), UTC))


def safe_next(target: str | None) -> str:
    """`target` when it is a console path on this origin (after signing in), else the console's home."""
    if not target:
        return HOME
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or "\\" in target or not (parts.path == "/console" or
                                                               parts.path.startswith("/console/")):
        return HOME
    return target
