"""GET /emails/metrics: the team's email events counted in Resend's shape, by period and domain; what is not
tracked is refused, and no other team's events count."""

from __future__ import annotations

import json
import uuid

import pytest
from test_emails import message


def _event(postgres, team_id, email_id: str, kind: str, detail: dict | None = None) -> None:
    postgres.psql(f"INSERT INTO email_events (id, team_id, email_id, type, detail) VALUES ('{uuid.uuid4()}', "
                  f"'{team_id}', '{email_id}', '{kind}', '{json.dumps(detail or {})}')",
                  user="postyard_owner", database="postyard")


async def _sent_two(client, team, sender, postgres) -> list[str]:
    ids = [(await client.post("/emails", json=message(sender), headers=team.headers)).json()["id"] for _ in range(2)]
    for email_id in ids:
        _event(postgres, team.team_id, email_id, "sent")
    _event(postgres, team.team_id, ids[0], "delivered")
    _event(postgres, team.team_id, ids[1], "bounced", {"type": "hard", "status": "5.1.1"})
    return ids


async def test_the_totals_count_the_teams_events_and_the_rates_are_shares_of_sent(client, team, sender, postgres):
    await _sent_two(client, team, sender, postgres)
    answer = (await client.get("/emails/metrics", headers=team.headers)).json()
    totals = answer["totals"]
    assert answer["object"] == "metrics" and "data" not in answer
    assert (totals["sent"], totals["delivered"], totals["bounced"], totals["bounced_permanent"]) == (2, 1, 1, 1)
    assert totals["bounced_transient"] == 0 and totals["delivery_rate"] == 0.5 and totals["bounce_rate"] == 0.5


async def test_the_breakdown_by_period_and_domain_names_each_row(client, team, sender, postgres):
    await _sent_two(client, team, sender, postgres)
    answer = (await client.get("/emails/metrics?dimensions=period,domain&metrics=sent&metrics=delivered"
                               "&granularity=hourly&timezone=Asia/Kolkata", headers=team.headers)).json()
    [row] = answer["data"]
    assert answer["metrics"] == ["sent", "delivered"] and set(answer["totals"]) == {"sent", "delivered"}
    assert (row["sent"], row["delivered"], row["domain_name"]) == (2, 1, sender)
    assert row["period"].endswith(":00:00+05:30")


async def test_another_teams_events_do_not_count(client, team, sender, postgres, settings):
    from app.cli import create_team

    await _sent_two(client, team, sender, postgres)
    _, other_key = await create_team(settings, "metrics-other")
    theirs = (await client.get("/emails/metrics", headers={"Authorization": f"Bearer {other_key}"})).json()
    assert theirs["totals"]["sent"] == 0


@pytest.mark.parametrize(("query", "reason"), [
    ("metrics=opened", "not tracked"), ("metrics=sent,happiness", "not a metric"),
    ("dimensions=broadcast", "not a dimension"), ("timezone=Mars/Olympus", "IANA"),
    ("start_date=2026-12-10&end_date=2026-12-01", "on or before"), ("granularity=yearly", "granularity"),
    ("start_date=yesterday", "ISO 8601"), ("domain_id=not-an-id", "ids"), ("end_date=0001-01-01", "early"),
    ("start_date=0001-01-01T00:00:00%2B01:00", "ISO 8601"),
    ("start_date=2000-01-01&dimensions=period&granularity=hourly", "periods"),
])
async def test_what_cannot_be_answered_truthfully_is_refused(client, team, query, reason):
    response = await client.get(f"/emails/metrics?{query}", headers=team.headers)
    assert response.status_code == 422 and reason in response.json()["message"]


async def test_an_email_counts_once_whatever_its_recipients_and_a_date_alone_covers_its_day(client, team, sender,
                                                                                           postgres):
    from datetime import UTC, datetime

    email_id = (await client.post("/emails", json=message(sender, to=["a@example.org", "b@example.org"]),
                                  headers=team.headers)).json()["id"]
    _event(postgres, team.team_id, email_id, "sent")
    for _ in ("a", "b"):
        _event(postgres, team.team_id, email_id, "delivered")
    today = datetime.now(UTC).date().isoformat()
    answer = (await client.get(f"/emails/metrics?start_date={today}&end_date={today}", headers=team.headers)).json()
    assert (answer["totals"]["sent"], answer["totals"]["delivered"], answer["totals"]["delivery_rate"]) == (1, 1, 1)
