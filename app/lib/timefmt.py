"""Timestamps as Resend writes them."""

from __future__ import annotations

from datetime import datetime

__all__ = ["iso"]


def iso(value: datetime | None) -> str | None:
    """ISO 8601 with offset, or None."""
    return value.isoformat() if value is not None else None
