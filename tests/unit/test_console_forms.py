"""The console's filter dates: the activity log and the audit log read `since` and `until` with one function."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from app.console.forms import day_bounds, parse_days
from app.lib.api_error import ApiError


def test_since_and_until_are_whole_utc_days_with_until_included():
    assert day_bounds(*parse_days("2026-02-01", "2026-02-28")) == (
        datetime(2026, 2, 1, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC))


def test_an_empty_field_leaves_that_end_open():
    assert parse_days("", "2026-02-28") == (None, date(2026, 2, 28))
    assert day_bounds(*parse_days("2026-02-01", "")) == (datetime(2026, 2, 1, tzinfo=UTC), None)
    assert day_bounds(*parse_days("", "")) == (None, None)


def test_one_day_is_both_since_and_until():
    assert day_bounds(*parse_days("2026-12-31", "2026-12-31")) == (
        datetime(2026, 12, 31, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))


@pytest.mark.parametrize("since, until, message", [
    ("yesterday", "", "since must be a date (YYYY-MM-DD)"),
    ("", "2026-02-30", "until must be a date (YYYY-MM-DD)"),
    ("2026-02-02", "2026-01-01", "since must not be after until"),
])
def test_a_wrong_day_is_refused_with_its_reason(since, until, message):
    with pytest.raises(ApiError) as refused:
        parse_days(since, until)
    assert (refused.value.status_code, refused.value.detail) == (422, message)
