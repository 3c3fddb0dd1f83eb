"""The console's webhooks pages: endpoints, adding one with its secret shown once, the delivery log and replay,
rotating, enabling, disabling and deleting; members, other teams and forms without CSRF refused."""

from __future__ import annotations

import pytest
from conftest import as_operator_cli
from console_pages import Page, console_owner, console_page, post_form
from sqlalchemy import text
from test_console_team import join_as, sign_in

from app.console.webhooks import EVENTS

LIST = "/console/webhooks"
ENDPOINT = "http://127.0.0.1:9/hook"


@pytest.fixture(autouse=True)
def _see_redirects(client) -> None:
    client.follow_redirects = False


async def _db(settings, sql: str, **params):
    return (await as_operator_cli(settings, lambda db: db.execute(text(sql), params))).all()


async def _add(client, endpoint: str = ENDPOINT, events: tuple[str, ...] = ("email.sent", "email.bounced")) -> Page:
    page = await console_page(client, LIST)
    response = await client.post(LIST, data={"csrf_token": page.csrf_token(), "endpoint": endpoint,
                                             "events": list(events)})
    assert response.status_code == 200, response.text[:500]
    return Page(response.text)


def _webhook_id(page: Page) -> str:
    """The id in the secret page's link to the endpoint."""
    links = [a.attrs["href"] for a in page.find("a") if a.attrs.get("href", "").startswith(f"{LIST}/")]
    return links[0].split("/")[-1]


async def _delivery(settings, webhook_id: str, state: str = "failed", code: int | None = 500) -> str:
    rows = await _db(settings, "INSERT INTO webhook_deliveries (id, team_id, webhook_id, message_id, event_type, "
                               "payload, state, attempts, last_status_code, created_at) "
                               "SELECT gen_random_uuid(), team_id, id, 'msg_1', 'email.bounced', '{}'::jsonb, :state, "
                               "5, :code, now() FROM webhooks WHERE id = :w RETURNING id",
                     state=state, code=code, w=webhook_id)
    return str(rows[0].id)


async def test_an_endpoint_is_added_and_its_secret_is_shown_once(client, settings):
    owner = await console_owner(client)
    shown = await _add(client)
    secret = shown.text_of("code", id="signing-secret")
    assert secret.startswith("whsec_")
    webhook_id = _webhook_id(shown)
    rows = await _db(settings, "SELECT endpoint, events, status, team_id FROM webhooks WHERE id = :w", w=webhook_id)
    assert [(r.endpoint, sorted(r.events), r.status, str(r.team_id)) for r in rows] == \
        [(ENDPOINT, ["email.bounced", "email.sent"], "enabled", owner["team_id"])]
    listed = await client.get(LIST)
    page = Page(listed.text)
    assert secret not in listed.text and ENDPOINT in page.text_of("tr", data_webhook=webhook_id)
    assert "email.bounced, email.sent" in page.text_of("tr", data_webhook=webhook_id)
    detail = await client.get(f"{LIST}/{webhook_id}")
    assert detail.status_code == 200 and secret not in detail.text
    assert [e.attrs["value"] for e in page.find("input", name="events")] == list(EVENTS)
    actions = [r.action for r in await _db(settings, "SELECT action FROM audit_logs WHERE team_id = :t",
                                           t=owner["team_id"])]
    assert "webhook.created" in actions


async def test_an_unsafe_or_invalid_endpoint_gets_the_apis_message(client, settings):
    owner = await console_owner(client)
    page = await console_page(client, LIST)
    no_events = await client.post(LIST, data={"csrf_token": page.csrf_token(), "endpoint": ENDPOINT})
    assert no_events.status_code == 422
    assert Page(no_events.text).text_of(role="alert").startswith("events:")
    # The form keeps what was typed.
    assert Page(no_events.text).find("input", name="endpoint")[0].attrs["value"] == ENDPOINT
    unsafe = await client.post(LIST, data={"csrf_token": page.csrf_token(), "endpoint": "http://10.1.2.3/hook",
                                           "events": ["email.sent"]})
    assert unsafe.status_code == 422 and Page(unsafe.text).find(role="alert")
    api = await client.post("/webhooks", json={"endpoint": "http://10.1.2.3/hook", "events": ["email.sent"]},
                            headers={"x-csrf-token": owner["csrf_token"]})
    assert Page(unsafe.text).text_of(role="alert") == api.json()["message"]
    assert not await _db(settings, "SELECT 1 FROM webhooks WHERE team_id = :t", t=owner["team_id"])


async def test_the_delivery_log_shows_each_delivery_and_replays_one(client, settings):
    await console_owner(client)
    webhook_id = _webhook_id(await _add(client))
    delivery_id = await _delivery(settings, webhook_id)
    path = f"{LIST}/{webhook_id}"
    page = await console_page(client, path)
    row = page.text_of("tr", data_delivery=delivery_id)
    assert row.split()[:4] == ["email.bounced", "failed", "500", "5"]
    replay = await post_form(client, f"{path}/deliveries/{delivery_id}/replay", {}, csrf_from=path)
    assert replay.status_code == 303 and replay.headers["location"] == path
    rows = await _db(settings, "SELECT state, message_id FROM webhook_deliveries WHERE webhook_id = :w "
                               "ORDER BY created_at", w=webhook_id)
    assert [(r.state, r.message_id) for r in rows] == [("failed", "msg_1"), ("pending", "msg_1")]
    after = await console_page(client, path)
    assert after.text_of(role="status") == "The event is queued again."
    assert len([e for e in after.find("tr") if "data-delivery" in e.attrs]) == 2


async def test_rotating_shows_the_new_secret_once_and_the_endpoint_is_disabled_enabled_and_deleted(client, settings):
    await console_owner(client)
    first = await _add(client)
    webhook_id = _webhook_id(first)
    path = f"{LIST}/{webhook_id}"
    rotated = await post_form(client, f"{path}/rotate-secret", {}, csrf_from=path)
    assert rotated.status_code == 200
    secret = Page(rotated.text).text_of("code", id="signing-secret")
    assert secret.startswith("whsec_") and secret != first.text_of("code", id="signing-secret")
    assert secret not in (await client.get(path)).text
    disabled = await post_form(client, f"{path}/status", {"status": "disabled"}, csrf_from=path)
    assert disabled.status_code == 303
    assert (await console_page(client, path)).text_of(id="webhook-status") == "disabled"
    await post_form(client, f"{path}/status", {"status": "enabled"}, csrf_from=path)
    assert (await _db(settings, "SELECT status FROM webhooks WHERE id = :w", w=webhook_id))[0].status == "enabled"
    wrong = await post_form(client, f"{path}/status", {"status": "paused"}, csrf_from=path)
    assert wrong.status_code == 422 and Page(wrong.text).text_of(role="alert").startswith("status:")
    deleted = await post_form(client, f"{path}/delete", {}, csrf_from=path)
    assert deleted.status_code == 303 and deleted.headers["location"] == LIST
    assert not await _db(settings, "SELECT 1 FROM webhooks WHERE id = :w", w=webhook_id)
    assert (await client.get(path)).status_code == 404


async def test_a_member_gets_no_forms_and_a_forged_post_is_refused(client, settings):
    owner = await console_owner(client)
    webhook_id = _webhook_id(await _add(client))
    delivery_id = await _delivery(settings, webhook_id)
    await join_as(client, owner, "member")
    path = f"{LIST}/{webhook_id}"
    for seen in (LIST, path):
        page = await console_page(client, seen)
        assert [f.attrs["action"] for f in page.find("form", method="post")] == ["/console/logout"]
    token = page.csrf_token()
    for action, fields in ((LIST, {"endpoint": ENDPOINT, "events": "email.sent"}), (f"{path}/rotate-secret", {}),
                           (f"{path}/status", {"status": "disabled"}), (f"{path}/delete", {}),
                           (f"{path}/deliveries/{delivery_id}/replay", {})):
        refused = await client.post(action, data={"csrf_token": token, **fields})
        assert refused.status_code == 403, action
        assert Page(refused.text).text_of(role="alert") == "This action needs the owner or admin role"
    rows = await _db(settings, "SELECT status FROM webhooks WHERE team_id = :t", t=owner["team_id"])
    assert [r.status for r in rows] == ["enabled"]
    assert len(await _db(settings, "SELECT 1 FROM webhook_deliveries WHERE webhook_id = :w", w=webhook_id)) == 1
    await sign_in(client, owner["email"])


async def test_another_teams_webhook_is_not_found(client, settings, other_team):
    hook = await client.post("/webhooks", json={"endpoint": ENDPOINT, "events": ["email.sent"]},
                             headers=other_team.headers)
    assert hook.status_code == 201, hook.text
    other_id = hook.json()["id"]
    await console_owner(client)
    page = await client.get(f"{LIST}/{other_id}")
    assert page.status_code == 404 and "text/html" in page.headers["content-type"]
    assert "Webhook not found" in Page(page.text).text
    token = (await console_page(client, LIST)).csrf_token()
    for action in ("rotate-secret", "delete"):
        refused = await client.post(f"{LIST}/{other_id}/{action}", data={"csrf_token": token})
        assert refused.status_code == 404 and Page(refused.text).text_of(role="alert") == "Webhook not found"
    assert (await client.get(f"{LIST}/not-an-id")).status_code == 404
    assert await _db(settings, "SELECT 1 FROM webhooks WHERE id = :w", w=other_id)


async def test_a_webhook_form_without_csrf_is_refused(client, settings):
    owner = await console_owner(client)
    response = await client.post(LIST, data={"endpoint": ENDPOINT, "events": "email.sent"})
    assert response.status_code == 403 and "security token" in Page(response.text).text_of(role="alert")
    assert not await _db(settings, "SELECT 1 FROM webhooks WHERE team_id = :t", t=owner["team_id"])
