"""The console's suppressions page: the list with its reason and origin, searched, filtered and paged; adding and
removing an address; members, other teams and forms without CSRF refused."""

from __future__ import annotations

import pytest
from conftest import as_operator_cli
from console_pages import Page, console_owner, console_page, post_form
from sqlalchemy import text
from test_console_team import join_as

LIST = "/console/suppressions"


@pytest.fixture(autouse=True)
def _see_redirects(client) -> None:
    client.follow_redirects = False


async def _db(settings, sql: str, **params):
    return (await as_operator_cli(settings, lambda db: db.execute(text(sql), params))).all()


def _listed(page: Page) -> list[str]:
    return [e.attrs["data-suppression"] for e in page.find("tr") if "data-suppression" in e.attrs]


async def _suppress(settings, team_id: str, email: str, reason: str) -> None:
    await _db(settings, "INSERT INTO suppressions (id, team_id, email, reason) "
                        "VALUES (gen_random_uuid(), :t, :e, :r) RETURNING id", t=team_id, e=email, r=reason)


async def test_an_address_is_added_shown_with_reason_and_origin_and_removed(client, settings):
    owner = await console_owner(client)
    added = await post_form(client, LIST, {"email": "Someone@Example.com", "reason": "complaint"}, csrf_from=LIST)
    assert added.status_code == 303 and added.headers["location"] == LIST
    page = await console_page(client, LIST)
    assert page.text_of(role="status") == "someone@example.com is suppressed."
    assert page.text_of("tr", data_suppression="someone@example.com").split()[:3] == \
        ["someone@example.com", "complaint", "complaint"]
    rows = await _db(settings, "SELECT id, reason FROM suppressions WHERE team_id = :t", t=owner["team_id"])
    assert [r.reason for r in rows] == ["complaint"]
    removed = await post_form(client, f"{LIST}/{rows[0].id}/remove", {}, csrf_from=LIST)
    assert removed.status_code == 303
    assert not await _db(settings, "SELECT 1 FROM suppressions WHERE team_id = :t", t=owner["team_id"])
    assert (await console_page(client, LIST)).text_of(role="status") == "someone@example.com is no longer suppressed."


async def test_an_invalid_address_gets_the_apis_message(client, settings):
    owner = await console_owner(client)
    response = await post_form(client, LIST, {"email": "not an address", "reason": "manual"}, csrf_from=LIST)
    api = await client.post("/suppressions", json={"email": "not an address"},
                            headers={"x-csrf-token": owner["csrf_token"]})
    assert response.status_code == api.status_code == 422
    assert Page(response.text).text_of(role="alert") == api.json()["message"]
    assert Page(response.text).find("input", name="email")[0].attrs["value"] == "not an address"
    wrong = await post_form(client, LIST, {"email": "a@example.com", "reason": "because"}, csrf_from=LIST)
    assert wrong.status_code == 422 and Page(wrong.text).text_of(role="alert").startswith("reason:")
    assert not await _db(settings, "SELECT 1 FROM suppressions WHERE team_id = :t", t=owner["team_id"])


async def test_the_list_is_searched_filtered_by_reason_and_paged(client, settings):
    owner = await console_owner(client)
    for index in range(5):
        await _suppress(settings, owner["team_id"], f"bounce{index}@alpha.example", "hard_bounce")
    await _suppress(settings, owner["team_id"], "angry@beta.example", "complaint")
    await _suppress(settings, owner["team_id"], "left@alpha.example", "unsubscribe")
    page = await console_page(client, LIST)
    assert len(_listed(page)) == 7
    origins = {e.attrs["data-suppression"]: page.text_of("tr", data_suppression=e.attrs["data-suppression"]).split()[2]
               for e in page.find("tr") if "data-suppression" in e.attrs}
    assert origins["left@alpha.example"] == "manual" and origins["bounce0@alpha.example"] == "bounce"
    assert sorted(_listed(await console_page(client, f"{LIST}?search=ALPHA"))) == \
        sorted([f"bounce{i}@alpha.example" for i in range(5)] + ["left@alpha.example"])
    assert _listed(await console_page(client, f"{LIST}?reason=complaint")) == ["angry@beta.example"]
    assert _listed(await console_page(client, f"{LIST}?search=alpha&reason=unsubscribe")) == ["left@alpha.example"]
    first = await console_page(client, f"{LIST}?reason=hard_bounce&per_page=3")
    following = first.find("a", rel="next")[0].attrs["href"]
    assert "reason=hard_bounce" in following
    second = await console_page(client, following)
    assert len(_listed(first)) == 3 and len(_listed(second)) == 2 and not second.find("a", rel="next")
    assert set(_listed(first)).isdisjoint(_listed(second))
    bad = await client.get(f"{LIST}?reason=because")
    assert bad.status_code == 422 and Page(bad.text).text_of(role="alert").startswith("reason:")


async def test_a_member_gets_no_forms_and_a_forged_post_is_refused(client, settings):
    owner = await console_owner(client)
    await _suppress(settings, owner["team_id"], "kept@example.com", "manual")
    await join_as(client, owner, "member")
    page = await console_page(client, LIST)
    assert _listed(page) == ["kept@example.com"]
    assert [f.attrs["action"] for f in page.find("form", method="post")] == ["/console/logout"]
    row_id = page.find("tr", data_suppression="kept@example.com")[0].attrs["data-suppression-id"]
    for action, fields in ((LIST, {"email": "new@example.com"}), (f"{LIST}/{row_id}/remove", {})):
        refused = await client.post(action, data={"csrf_token": page.csrf_token(), **fields})
        assert refused.status_code == 403
        assert Page(refused.text).text_of(role="alert") == "This action needs the owner or admin role"
    rows = await _db(settings, "SELECT email FROM suppressions WHERE team_id = :t", t=owner["team_id"])
    assert [r.email for r in rows] == ["kept@example.com"]


async def test_another_teams_suppression_is_neither_listed_nor_removed(client, settings, other_team):
    await _suppress(settings, str(other_team.team_id), "theirs@example.com", "manual")
    other_id = (await _db(settings, "SELECT id FROM suppressions WHERE team_id = :t", t=str(other_team.team_id)))[0].id
    await console_owner(client)
    assert _listed(await console_page(client, f"{LIST}?search=theirs")) == []
    refused = await post_form(client, f"{LIST}/{other_id}/remove", {}, csrf_from=LIST)
    assert refused.status_code == 404 and Page(refused.text).text_of(role="alert") == "Suppression not found"
    assert await _db(settings, "SELECT 1 FROM suppressions WHERE id = :i", i=other_id)


async def test_a_suppression_form_without_csrf_is_refused(client, settings):
    owner = await console_owner(client)
    response = await client.post(LIST, data={"email": "x@example.com"})
    assert response.status_code == 403 and "security token" in Page(response.text).text_of(role="alert")
    assert not await _db(settings, "SELECT 1 FROM suppressions WHERE team_id = :t", t=owner["team_id"])
