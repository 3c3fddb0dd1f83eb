"""The console's overview: the team's activity per period, its queue and its webhook failures, scoped to it."""

from __future__ import annotations

import time
import uuid

import pytest
from conftest import TeamKey, verified_domain
from console_pages import Page, console_owner, console_page
from test_emails import message
from test_outbox import db, drain

from app.console.overview import CHART_HEIGHT, bar_chart


@pytest.fixture(autouse=True)
def _see_redirects(client) -> None:
    client.follow_redirects = False


async def _owner_with_key(client) -> tuple[dict, TeamKey]:
    """A signed-in owner and a full-access key of their team."""
    owner = await console_owner(client)
    key = await client.post("/api-keys", json={"name": "overview"}, headers={"x-csrf-token": owner["csrf_token"]})
    assert key.status_code == 201, key.text
    return owner, TeamKey(uuid.UUID(owner["team_id"]), key.json()["token"])


def _event(postgres, email_id: str, kind: str, age: str = "1 minute") -> None:
    db(postgres, "INSERT INTO email_events (id, team_id, email_id, type, recipient, created_at) "
                 f"SELECT gen_random_uuid(), team_id, id, '{kind}', to_addresses[1], now() - interval '{age}' "
                 f"FROM emails WHERE id = '{email_id}'")


def _figures(page: Page, window: str) -> dict[str, int]:
    row = page.find("tr", data_window=window)[0]
    index = page.elements.index(row)
    cells = [e for e in page.elements[index:index + 12] if e.tag == "td"][:5]
    return {cell.attrs["data-figure"]: int("".join(cell.children_text)) for cell in cells}


async def test_the_overview_counts_the_teams_emails_per_period(client, settings, owner_engine, smtp_sink, postgres,
                                                               other_team):
    _, team = await _owner_with_key(client)
    sender = (await verified_domain(client, team, postgres))["name"]
    ids = [(await client.post("/emails", json=message(sender), headers=team.headers)).json()["id"] for _ in range(3)]
    await drain(settings, owner_engine)
    _event(postgres, ids[0], "delivered")
    _event(postgres, ids[1], "delivered")
    _event(postgres, ids[2], "delivery_delayed")
    _event(postgres, ids[2], "bounced")
    _event(postgres, ids[0], "complained", age="3 days")
    _event(postgres, ids[1], "bounced", age="10 days")
    _event(postgres, ids[1], "delivered", age="40 days")
    # Another team's activity is never counted.
    other_sender = (await verified_domain(client, other_team, postgres))["name"]
    other_id = (await client.post("/emails", json=message(other_sender), headers=other_team.headers)).json()["id"]
    _event(postgres, other_id, "delivered")

    page = await console_page(client, "/console/")
    assert _figures(page, "24 hours") == {"sent": 3, "delivered": 2, "bounced": 1, "complained": 0, "deferred": 1}
    assert _figures(page, "7 days") == {"sent": 3, "delivered": 2, "bounced": 1, "complained": 1, "deferred": 1}
    assert _figures(page, "30 days") == {"sent": 3, "delivered": 2, "bounced": 2, "complained": 1, "deferred": 1}
    assert len(page.find("svg")) == 3 and len(page.find("rect")) == 15


async def test_the_overview_shows_the_queue_and_webhook_failures(client, settings, owner_engine, smtp_sink, postgres):
    _, team = await _owner_with_key(client)
    sender = (await verified_domain(client, team, postgres))["name"]
    later = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(time.time() + 3600))
    await client.post("/emails", json=message(sender, scheduled_at=later), headers=team.headers)
    for _ in range(2):
        await client.post("/emails", json=message(sender), headers=team.headers)
    hook = await client.post("/webhooks", json={"endpoint": "http://127.0.0.1:9/hook", "events": ["email.sent"]},
                             headers=team.headers)
    assert hook.status_code == 201, hook.text
    for state, attempts, age in (("failed", 5, "1 hour"), ("failed", 5, "2 days"), ("pending", 2, "1 minute"),
                                 ("succeeded", 1, "1 minute")):
        db(postgres, "INSERT INTO webhook_deliveries (id, team_id, webhook_id, message_id, event_type, payload, state, "
                     f"attempts, created_at) VALUES (gen_random_uuid(), '{team.team_id}', '{hook.json()['id']}', "
                     f"'msg', 'email.sent', '{{}}', '{state}', {attempts}, now() - interval '{age}')")

    page = await console_page(client, "/console/")
    figures = {e.attrs["data-figure"]: "".join(e.children_text) for e in page.find("dd")}
    assert figures == {"queued": "2", "sending": "0", "scheduled": "1", "webhook-failed-1": "1",
                       "webhook-failed-2": "2", "webhook-failed-3": "2", "webhook-retrying": "1"}


async def test_a_member_without_a_team_gets_an_error_page_not_a_traceback(client, settings, postgres):
    owner = await console_owner(client)
    db(postgres, f"DELETE FROM memberships WHERE team_id = '{owner['team_id']}'")
    response = await client.get("/console/")
    assert response.status_code == 403 and "text/html" in response.headers["content-type"]
    assert Page(response.text).text_of(role="alert") == "This account belongs to no team"


def test_bars_are_scaled_to_the_largest_count_and_an_empty_chart_keeps_hairlines():
    bars = bar_chart({"sent": 10, "delivered": 5, "bounced": 0})
    assert bars[0].height == 2 * bars[1].height and bars[2].height == 1.0
    assert all(bar.y + bar.height <= CHART_HEIGHT for bar in bars)
    assert {bar.height for bar in bar_chart({"sent": 0, "delivered": 0})} == {1.0}


async def test_an_operator_in_no_team_is_taken_to_the_operators_pages(client, postgres):
    owner = await console_owner(client)
    db(postgres, f"UPDATE users SET is_operator = true WHERE id = '{owner['user_id']}'")
    db(postgres, f"DELETE FROM memberships WHERE team_id = '{owner['team_id']}'")
    response = await client.get("/console/")
    assert response.status_code == 303 and response.headers["location"] == "/console/operator"
