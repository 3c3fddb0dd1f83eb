"""One line of the operators' status page, and the thresholds that decide its state."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

__all__ = [
    "ERROR", "OK", "STATES", "UNKNOWN", "WARNING", "Check", "HostStatus", "days_left", "disk_space", "summary",
]

OK, WARNING, ERROR, UNKNOWN = "ok", "warning", "error", "unknown"
STATES = (OK, WARNING, ERROR, UNKNOWN)
CERTIFICATE_WARNING_DAYS, CERTIFICATE_ERROR_DAYS = 21, 7
DISK_WARNING_FREE, DISK_ERROR_FREE = 0.15, 0.05  # fractions of the disk


@dataclass(frozen=True)
class Check:
    """One line of the status page: what was checked, its state (ok, warning, error, unknown) and why."""

    name: str
    status: str
    reason: str


@dataclass(frozen=True)
class HostStatus:
    """One host's checks, from the report it last sent."""

    name: str
    address: str
    reported_at: datetime
    checks: list[Check]


def days_left(name: str, not_after: datetime, now: datetime) -> Check:
    days = (not_after - now).days
    until = f"until {not_after:%Y-%m-%d}"
    if not_after <= now:
        return Check(name, ERROR, f"expired on {not_after:%Y-%m-%d}")
    if days < CERTIFICATE_ERROR_DAYS:
        return Check(name, ERROR, f"{days} days left ({until})")
    if days < CERTIFICATE_WARNING_DAYS:
        return Check(name, WARNING, f"{days} days left ({until})")
    return Check(name, OK, f"{days} days left ({until})")


def disk_space(name: str, free: int, total: int) -> Check:
    share = free / total if total else 0.0
    reason = f"{free / 2**30:.1f} GiB free of {total / 2**30:.1f} GiB ({share:.0%})"
    status = ERROR if share < DISK_ERROR_FREE else WARNING if share < DISK_WARNING_FREE else OK
    return Check(name, status, reason)


def summary(checks: list[Check]) -> dict[str, Any]:
    """How many checks are in each state."""
    return {status: sum(1 for c in checks if c.status == status) for status in STATES}
