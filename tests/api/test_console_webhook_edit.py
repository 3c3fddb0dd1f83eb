"""The console's webhook page changes an endpoint's URL and events as `PATCH /webhooks/{id}` does: the same checks
and messages, an audit entry; members, other teams and forms without CSRF refused."""

from __future__ import annotations

import re

import pytest
from conftest import as_operator_cli
from console_pages import Page, console_owner, console_page, post_form
from sqlalchemy import text
from test_console_team import join_as, sign_in

LIST = "/console/webhooks"
ENDPOINT = "http://127.0.0.1:9/hook"
MOVED = "http://127.0.0.1:9/moved"


@pytest.fixture(autouse=True)
def _see_redirects(client) -> None:
    client.follow_redirects = False


async def _db(settings, sql: str, **params):
    return (await as_operator_cli(settings, lambda db: db.execute(text(sql), params))).all()


async def _endpoint(client, owner: dict, events: tuple[str, ...] = ("email.sent",)) -> str:
    """A new endpoint of the owner's team, added through the API; its id."""
    made = await client.post("/webhooks", json={"endpoint": ENDPOINT, "events": list(events)},
                             headers={"x-csrf-token": owner["csrf_token"]})
    assert made.status_code == 201, made.text
    return made.json()["id"]


async def _stored(settings, webhook_id: str) -> tuple[str, list[str]]:
    row = (await _db(settings, "SELECT endpoint, events FROM webhooks WHERE id = :w", w=webhook_id))[0]
    return row.endpoint, sorted(row.events)


def _checked(page: Page) -> list[str]:
    return [e.attrs["value"] for e in page.find("input", name="events") if "checked" in e.attrs]


async def test_an_owner_changes_an_endpoints_url_and_events_and_it_is_audited(client, settings):
    owner = await console_owner(client)
    webhook_id = await _endpoint(client, owner)
    path = f"{LIST}/{webhook_id}"
    page = await console_page(client, path)
    assert page.find("input", name="endpoint")[0].attrs["value"] == ENDPOINT and _checked(page) == ["email.sent"]
    saved = await post_form(client, f"{path}/edit", {"endpoint": MOVED, "events": ["email.bounced",
                                                                                  "email.delivered"]},
                            csrf_from=path)
    assert saved.status_code == 303 and saved.headers["location"] == path
    assert await _stored(settings, webhook_id) == (MOVED, ["email.bounced", "email.delivered"])
    after = await console_page(client, path)
    assert after.text_of(role="status") == "The endpoint is saved."
    assert _checked(after) == ["email.delivered", "email.bounced"]
    assert (await client.get(f"/webhooks/{webhook_id}")).json()["endpoint"] == MOVED
    actions = [r.action for r in await _db(settings, "SELECT action FROM audit_logs WHERE resource_id = :w "
                                                     "ORDER BY created_at", w=webhook_id)]
    assert actions == ["webhook.created", "webhook.updated"]


async def test_a_private_address_gets_the_apis_message_and_changes_nothing(client, settings):
    owner = await console_owner(client)
    webhook_id = await _endpoint(client, owner)
    path = f"{LIST}/{webhook_id}"
    unsafe = "http://10.1.2.3/hook"
    refused = await post_form(client, f"{path}/edit", {"endpoint": unsafe, "events": ["email.failed"]},
                              csrf_from=path)
    api = await client.patch(f"/webhooks/{webhook_id}", json={"endpoint": unsafe},
                             headers={"x-csrf-token": owner["csrf_token"]})
    assert refused.status_code == api.status_code == 422
    page = Page(refused.text)
    assert page.text_of(role="alert") == api.json()["message"]
    # The form keeps what was typed.
    assert page.find("input", name="endpoint")[0].attrs["value"] == unsafe and _checked(page) == ["email.failed"]
    assert await _stored(settings, webhook_id) == (ENDPOINT, ["email.sent"])


@pytest.mark.parametrize("fields", [
    {"endpoint": MOVED},
    {"endpoint": MOVED, "events": ["email.viewed"]},
    {"endpoint": "ftp://127.0.0.1/x", "events": ["email.sent"]},
    {"endpoint": "http://" + "a" * 2050, "events": ["email.sent"]},
    {"endpoint": "http://user:pw@127.0.0.1/x", "events": ["email.sent"]},
])
async def test_a_bad_url_or_event_list_gets_the_apis_message_and_changes_nothing(client, settings, fields):
    owner = await console_owner(client)
    webhook_id = await _endpoint(client, owner)
    path = f"{LIST}/{webhook_id}"
    refused = await post_form(client, f"{path}/edit", fields, csrf_from=path)
    api = await client.patch(f"/webhooks/{webhook_id}", json={"events": [], **fields},
                             headers={"x-csrf-token": owner["csrf_token"]})
    assert refused.status_code == api.status_code == 422
    # The same reason; the console names the field without the API's list index (`events`, not `events[0]`).
    assert Page(refused.text).text_of(role="alert") == re.sub(r"^(\w+)\[\d+\]:", r"\1:", api.json()["message"])
    assert await _stored(settings, webhook_id) == (ENDPOINT, ["email.sent"])


async def test_an_empty_url_is_refused_not_left_as_it_was(client, settings):
    owner = await console_owner(client)
    webhook_id = await _endpoint(client, owner)
    path = f"{LIST}/{webhook_id}"
    refused = await post_form(client, f"{path}/edit", {"endpoint": "", "events": ["email.failed"]}, csrf_from=path)
    assert refused.status_code == 422 and Page(refused.text).text_of(role="alert") == "endpoint: required"
    assert await _stored(settings, webhook_id) == (ENDPOINT, ["email.sent"])


async def test_a_member_gets_no_edit_form_and_a_forged_edit_is_refused(client, settings):
    owner = await console_owner(client)
    webhook_id = await _endpoint(client, owner)
    await join_as(client, owner, "member")
    path = f"{LIST}/{webhook_id}"
    page = await console_page(client, path)
    assert not page.find("form", action=f"{path}/edit") and not page.find("input", name="endpoint")
    refused = await client.post(f"{path}/edit", data={"csrf_token": page.csrf_token(), "endpoint": MOVED,
                                                     "events": ["email.failed"]})
    assert refused.status_code == 403
    assert Page(refused.text).text_of(role="alert") == "This action needs the owner or admin role"
    assert await _stored(settings, webhook_id) == (ENDPOINT, ["email.sent"])
    await sign_in(client, owner["email"])


async def test_another_teams_endpoint_is_not_found_and_not_changed(client, settings, other_team):
    hook = await client.post("/webhooks", json={"endpoint": ENDPOINT, "events": ["email.sent"]},
                             headers=other_team.headers)
    assert hook.status_code == 201, hook.text
    other_id = hook.json()["id"]
    await console_owner(client)
    token = (await console_page(client, LIST)).csrf_token()
    refused = await client.post(f"{LIST}/{other_id}/edit", data={"csrf_token": token, "endpoint": MOVED,
                                                                "events": ["email.failed"]})
    assert refused.status_code == 404 and Page(refused.text).text_of(role="alert") == "Webhook not found"
    bad_id = await client.post(f"{LIST}/not-an-id/edit", data={"csrf_token": token, "endpoint": MOVED,
                                                              "events": ["email.failed"]})
    assert bad_id.status_code == 404
    assert await _stored(settings, other_id) == (ENDPOINT, ["email.sent"])


async def test_an_edit_without_csrf_is_refused(client, settings):
    owner = await console_owner(client)
    webhook_id = await _endpoint(client, owner)
    refused = await client.post(f"{LIST}/{webhook_id}/edit", data={"endpoint": MOVED, "events": ["email.failed"]})
    assert refused.status_code == 403 and "security token" in Page(refused.text).text_of(role="alert")
    assert await _stored(settings, webhook_id) == (ENDPOINT, ["email.sent"])
