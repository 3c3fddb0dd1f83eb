"""Quota periods and the replies of a refused send (app/domain/emails/admission.py)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from app.domain.emails.admission import SendingRefused, period_starts, resets_at


def test_periods_are_the_utc_day_and_month_whatever_the_clocks_zone():
    now = datetime(2026, 3, 1, 0, 30, tzinfo=timezone(timedelta(hours=2)))  # still February in UTC
    assert period_starts(now) == {"day": date(2026, 2, 28), "month": date(2026, 2, 1)}


@pytest.mark.parametrize(("now", "period", "reset"), [
    (datetime(2026, 12, 31, 23, 59, 30, tzinfo=UTC), "day", datetime(2027, 1, 1, tzinfo=UTC)),
    (datetime(2026, 12, 31, 23, 59, 30, tzinfo=UTC), "month", datetime(2027, 1, 1, tzinfo=UTC)),
    (datetime(2028, 2, 10, 8, 0, tzinfo=UTC), "month", datetime(2028, 3, 1, tzinfo=UTC)),
    (datetime(2028, 2, 28, 8, 0, tzinfo=UTC), "day", datetime(2028, 2, 29, tzinfo=UTC)),
])
def test_a_count_resets_at_the_next_utc_boundary_of_its_period(now, period, reset):
    assert resets_at(now, period) == reset


def test_a_suspension_is_a_403_and_a_permanent_5_7_1():
    refused = SendingRefused("team_suspended", "This team is suspended and cannot send: spam")
    assert (refused.status_code, refused.name, refused.headers) == (403, "team_suspended", None)
    assert refused.smtp_reply == "554 5.7.1 This team is suspended and cannot send: spam"


def test_a_quota_is_a_429_with_retry_after_and_a_temporary_4_7_1():
    refused = SendingRefused("quota_exceeded", "over the daily quota", retry_after=3600)
    assert (refused.status_code, refused.headers) == (429, {"Retry-After": "3600"})
    assert refused.smtp_reply == "450 4.7.1 over the daily quota"


def test_the_smtp_reply_is_one_ascii_line_of_at_most_512_octets_whatever_the_reason():
    reply = SendingRefused("team_suspended", "Spam\r\n250 2.0.0 Ok\x00 über " + "x" * 600).smtp_reply
    assert reply.startswith("554 5.7.1 Spam 250 2.0.0 Ok ?ber xxx") and len(reply) <= 510
    assert reply.isascii() and reply.isprintable()
