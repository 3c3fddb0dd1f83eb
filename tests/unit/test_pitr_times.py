"""Restore target times: an ISO 8601 time with its offset, read as UTC; anything else refused."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from postyard.pitr import RestoreError, parse_target_time


@pytest.mark.parametrize("text", ["2026-12-01T14:03:00Z", "2026-12-01 15:03:00+01:00", "2026-12-01T14:03:00+00:00"])
def test_a_time_with_an_offset_is_read_as_utc(text):
    assert parse_target_time(text) == datetime(2026, 12, 1, 14, 3, tzinfo=UTC)


@pytest.mark.parametrize("text, reason", [
    ("2026-12-01T14:03:00", "no UTC offset"),
    ("yesterday", "not an ISO 8601 time"),
    ("2026-13-01T00:00:00Z", "not an ISO 8601 time"),
])
def test_other_times_are_refused_with_the_reason(text, reason):
    with pytest.raises(RestoreError, match=reason):
        parse_target_time(text)
