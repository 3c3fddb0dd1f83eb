"""Resend's template variables, `{{{KEY}}}`: which a text uses, and the text with each replaced by its value.

A value is HTML-escaped where it goes into HTML, so a variable can never add markup to a message; the subject
and the plain text get it as given (the send path still refuses control characters in the subject).
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence
from typing import Any

from app.lib.api_error import ApiError

__all__ = ["render", "resolve_values", "used_keys"]

_VARIABLE = re.compile(r"\{\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}\}")


def used_keys(*texts: str | None) -> set[str]:
    """The variables the texts refer to."""
    return {match for text in texts if text for match in _VARIABLE.findall(text)}


def resolve_values(declared: Sequence[Mapping[str, Any]], given: Mapping[str, Any] | None) -> dict[str, str]:
    """Each declared variable's value as text: the one given, else its fallback; 422 for a variable that is not
    declared, a value of the wrong type, or one with neither a value nor a fallback."""
    given = dict(given or {})
    by_key = {v["key"]: v for v in declared}
    unknown = sorted(set(given) - set(by_key))
    if unknown:
        raise ApiError(422, "validation_error", f"template.variables: {', '.join(unknown)} is not a variable of "
                                                "the template")
    values = {}
    for key, variable in by_key.items():
        value = given.get(key, variable.get("fallback_value"))
        if value is None:
            raise ApiError(422, "validation_error", f"template.variables: {key} is required (it has no fallback)")
        if variable["type"] == "number" and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise ApiError(422, "validation_error", f"template.variables: {key} must be a number")
        values[key] = str(value)
    return values


def render(text: str | None, values: Mapping[str, str], *, escape: bool) -> str | None:
    """The text with each `{{{KEY}}}` replaced (HTML-escaped when `escape`)."""
    if text is None:
        return None
    return _VARIABLE.sub(lambda m: html.escape(values[m[1]]) if escape else values[m[1]], text)
