"""Response fields that Resend's description types as present-or-absent: absent, not null, when there is none."""

from __future__ import annotations

from typing import TypeVar

import msgspec

__all__ = ["Absent", "ABSENT", "unless_none"]

T = TypeVar("T")

Absent = msgspec.UnsetType
ABSENT = msgspec.UNSET


def unless_none(value: T | None) -> T | Absent:
    """The value, or ABSENT (the field is left out of the JSON) when it is None."""
    return ABSENT if value is None else value
