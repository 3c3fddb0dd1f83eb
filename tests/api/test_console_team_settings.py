"""The console's team settings and invite validity: the team's name, rate limits and retention changed as
`PATCH /team` does, invites valid for the hours asked as `POST /team/invites`; the API's messages, members, and
forms without CSRF refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from conftest import as_operator_cli
from console_pages import Page, console_owner, console_page, post_form
from sqlalchemy import text
from test_console_team import join_as, sign_in

TEAM = "/console/team"
SETTINGS = f"{TEAM}/settings"
INVITES = f"{TEAM}/invites"


@pytest.fixture(autouse=True)
def _see_redirects(client) -> None:
    client.follow_redirects = False


async def _db(settings, sql: str, **params):
    return (await as_operator_cli(settings, lambda db: db.execute(text(sql), params))).all()


async def _team_row(settings, team_id: str):
    return (await _db(settings, "SELECT name, rate_limit, api_key_rate_limit, retention_days FROM teams "
                                "WHERE id = :t", t=team_id))[0]


def _value(page: Page, name: str) -> str:
    return page.find("input", name=name)[0].attrs.get("value", "")


async def test_an_owner_renames_the_team_and_sets_its_rate_limits_and_it_is_audited(client, settings):
    owner = await console_owner(client, team_name="Before")
    page = await console_page(client, TEAM)
    assert _value(page, "name") == "Before" and _value(page, "rate_limit") == ""
    assert page.find("input", name="rate_limit")[0].attrs["placeholder"].startswith(str(settings.rate_limit))
    saved = await post_form(client, SETTINGS, {"name": "After", "rate_limit": "5000", "api_key_rate_limit": "250",
                                               "retention_days": "60"}, csrf_from=TEAM)
    assert saved.status_code == 303 and saved.headers["location"] == TEAM
    row = await _team_row(settings, owner["team_id"])
    assert (row.name, row.rate_limit, row.api_key_rate_limit, row.retention_days) == ("After", 5000, 250, 60)
    after = await console_page(client, TEAM)
    assert after.text_of(role="status") == "The team's settings are saved."
    assert (_value(after, "name"), _value(after, "rate_limit"), _value(after, "api_key_rate_limit")) == \
        ("After", "5000", "250")
    assert after.text_of("h1") == "Team After"
    api = (await client.get("/team")).json()
    assert (api["name"], api["rate_limit"], api["api_key_rate_limit"]) == ("After", 5000, 250)
    details = [r.details for r in await _db(settings, "SELECT details FROM audit_logs WHERE team_id = :t AND "
                                                      "action = 'team.updated'", t=owner["team_id"])]
    assert details == [{"name": "After", "rate_limit": 5000, "api_key_rate_limit": 250, "retention_days": 60}]


async def test_an_empty_rate_limit_leaves_the_limit_as_it_is(client, settings):
    owner = await console_owner(client)
    await post_form(client, SETTINGS, {"rate_limit": "900", "api_key_rate_limit": "90"}, csrf_from=TEAM)
    kept = await post_form(client, SETTINGS, {"name": "Renamed", "rate_limit": "", "api_key_rate_limit": "",
                                              "retention_days": "30"}, csrf_from=TEAM)
    assert kept.status_code == 303
    row = await _team_row(settings, owner["team_id"])
    assert (row.name, row.rate_limit, row.api_key_rate_limit) == ("Renamed", 900, 90)


@pytest.mark.parametrize(("field", "typed", "sent"), [
    ("rate_limit", "0", 0),
    ("rate_limit", "1000001", 1000001),
    ("api_key_rate_limit", "-3", -3),
    ("rate_limit", "lots", "lots"),
    ("name", "x" * 201, "x" * 201),
    ("retention_days", "3651", 3651),
])
async def test_a_bad_setting_gets_the_apis_message_and_changes_nothing(client, settings, field, typed, sent):
    owner = await console_owner(client, team_name="Steady")
    refused = await post_form(client, SETTINGS, {field: typed}, csrf_from=TEAM)
    api = await client.patch("/team", json={field: sent}, headers={"x-csrf-token": owner["csrf_token"]})
    assert refused.status_code == api.status_code == 422
    assert Page(refused.text).text_of(role="alert") == api.json()["message"]
    row = await _team_row(settings, owner["team_id"])
    assert (row.name, row.rate_limit, row.api_key_rate_limit, row.retention_days) == ("Steady", None, None, 30)


async def test_an_admin_changes_the_settings_as_the_api_lets_them(client, settings):
    owner = await console_owner(client)
    await join_as(client, owner, "admin")
    saved = await post_form(client, SETTINGS, {"name": "By the admin", "rate_limit": "700"}, csrf_from=TEAM)
    assert saved.status_code == 303
    row = await _team_row(settings, owner["team_id"])
    assert (row.name, row.rate_limit) == ("By the admin", 700)


async def test_a_member_sees_the_settings_read_only_and_a_forged_change_is_refused(client, settings):
    owner = await console_owner(client, team_name="Fixed")
    await post_form(client, SETTINGS, {"rate_limit": "800"}, csrf_from=TEAM)
    await join_as(client, owner, "member")
    page = await console_page(client, TEAM)
    assert not page.find("form", action=SETTINGS) and not page.find("input", name="rate_limit")
    assert not page.find("input", name="expires_in_hours")
    assert page.text_of("dd", data_setting="rate_limit") == "800"
    assert page.text_of("dd", data_setting="api_key_rate_limit") == \
        f"{settings.api_key_rate_limit} (the instance's default)"
    for action, fields in ((SETTINGS, {"name": "Taken", "rate_limit": "1000000"}),
                           (INVITES, {"role": "member", "expires_in_hours": "720"})):
        refused = await client.post(action, data={"csrf_token": page.csrf_token(), **fields})
        assert refused.status_code == 403, action
        assert Page(refused.text).text_of(role="alert") == "This action needs the owner or admin role"
    row = await _team_row(settings, owner["team_id"])
    assert (row.name, row.rate_limit) == ("Fixed", 800)
    assert len(await _db(settings, "SELECT 1 FROM invites WHERE team_id = :t", t=owner["team_id"])) == 1
    await sign_in(client, owner["email"])


async def test_settings_without_csrf_are_refused(client, settings):
    owner = await console_owner(client, team_name="Guarded")
    refused = await client.post(SETTINGS, data={"name": "Forged", "rate_limit": "1"})
    assert refused.status_code == 403 and "security token" in Page(refused.text).text_of(role="alert")
    row = await _team_row(settings, owner["team_id"])
    assert (row.name, row.rate_limit) == ("Guarded", None)


async def test_a_rate_limit_set_in_the_console_limits_the_teams_requests(client, settings):
    await console_owner(client)
    assert (await post_form(client, SETTINGS, {"rate_limit": "3"}, csrf_from=TEAM)).status_code == 303
    answers = [(await client.get("/team")).status_code for _ in range(4)]
    assert answers[-1] == 429 and set(answers) <= {200, 429}


async def test_an_invite_is_valid_for_the_hours_asked(client, settings):
    owner = await console_owner(client)
    page = await console_page(client, TEAM)
    assert _value(page, "expires_in_hours") == str(settings.invite_ttl_hours)
    before = datetime.now(UTC)
    made = await post_form(client, INVITES, {"role": "member", "expires_in_hours": "2"}, csrf_from=TEAM)
    assert made.status_code == 200 and "invites/accept?token=" in Page(made.text).text_of(id="invite-link")
    rows = await _db(settings, "SELECT expires_at FROM invites WHERE team_id = :t", t=owner["team_id"])
    assert before + timedelta(hours=2) <= rows[0].expires_at <= datetime.now(UTC) + timedelta(hours=2)
    details = (await _db(settings, "SELECT details FROM audit_logs WHERE team_id = :t AND action = "
                                   "'invite.created'", t=owner["team_id"]))[0].details
    assert details["expires_at"] == rows[0].expires_at.isoformat()


async def test_an_invite_without_hours_lasts_the_instances_default(client, settings):
    owner = await console_owner(client)
    before = datetime.now(UTC)
    made = await post_form(client, INVITES, {"role": "member", "expires_in_hours": ""}, csrf_from=TEAM)
    assert made.status_code == 200
    expires = (await _db(settings, "SELECT expires_at FROM invites WHERE team_id = :t", t=owner["team_id"]))[0][0]
    default = timedelta(hours=settings.invite_ttl_hours)
    assert before + default <= expires <= datetime.now(UTC) + default


@pytest.mark.parametrize("hours", ["0", "721", "-1"])
async def test_an_invite_validity_out_of_bounds_gets_the_apis_message(client, settings, hours):
    owner = await console_owner(client)
    refused = await post_form(client, INVITES, {"email": "someone@example.test", "role": "member",
                                                "expires_in_hours": hours}, csrf_from=TEAM)
    api = await client.post("/team/invites", json={"role": "member", "expires_in_hours": int(hours)},
                            headers={"x-csrf-token": owner["csrf_token"]})
    assert refused.status_code == api.status_code == 422
    page = Page(refused.text)
    assert page.text_of(role="alert") == api.json()["message"]
    # The form keeps what was typed.
    assert (_value(page, "email"), _value(page, "expires_in_hours")) == ("someone@example.test", hours)
    assert not await _db(settings, "SELECT 1 FROM invites WHERE team_id = :t", t=owner["team_id"])
