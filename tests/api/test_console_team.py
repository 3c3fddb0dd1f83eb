"""The console's team page: members, roles and their rules, invites, the audit log and the retention setting."""

from __future__ import annotations

import pytest
from conftest import as_operator_cli
from console_pages import PASSWORD, Page, console_owner, console_page, new_email, post_form
from sqlalchemy import text

TEAM = "/console/team"


@pytest.fixture(autouse=True)
def _see_redirects(client) -> None:
    client.follow_redirects = False


async def join_as(client, owner: dict, role: str, email: str | None = None) -> str:
    """Invite a new user with `role` to the owner's team through the API and sign them up in this client (now
    signed in as them); their email."""
    invite = await client.post("/team/invites", json={"email": (email := email or new_email()), "role": role},
                               headers={"x-csrf-token": owner["csrf_token"]})
    assert invite.status_code == 201, invite.text
    client.cookies.clear()
    joined = await client.post("/console/invites/register", data={"invite": invite.json()["token"], "email": email,
                                                                  "password": PASSWORD})
    assert joined.status_code == 303, joined.text
    return email


async def sign_in(client, email: str) -> None:
    """Sign in to the console as `email` (instead of whoever the client was)."""
    client.cookies.clear()
    response = await client.post("/console/login", data={"email": email, "password": PASSWORD})
    assert response.status_code == 303, response.text


async def _db(settings, sql: str, **params):
    return (await as_operator_cli(settings, lambda db: db.execute(text(sql), params))).all()


def _member(page: Page, email: str) -> tuple[str, str]:
    """The role and two-factor status the members table shows for `email`."""
    row = page.find("tr", data_member=email)[0]
    return row.attrs["data-role"], row.attrs["data-two-factor"]


def _member_id(page: Page, email: str) -> str:
    return page.find("tr", data_member=email)[0].attrs["data-member-id"]


async def test_the_team_page_lists_members_with_roles_and_two_factor_status(client):
    owner_email = new_email()
    owner = await console_owner(client, owner_email, team_name="Harbour")
    member_email = await join_as(client, owner, "member")
    await sign_in(client, owner_email)
    page = await console_page(client, TEAM)
    assert _member(page, owner_email) == ("owner", "off")
    assert _member(page, member_email) == ("member", "off")
    assert page.text_of("tr", data_member=owner_email).startswith(f"{owner_email} (you) owner off")
    assert page.find("form", action="/console/team/invites")


async def test_an_owner_changes_a_members_role_and_removes_them(client, settings):
    owner = await console_owner(client)
    email = await join_as(client, owner, "member")
    await sign_in(client, owner["email"])
    member_id = _member_id(await console_page(client, TEAM), email)
    changed = await post_form(client, f"{TEAM}/members/{member_id}/role", {"role": "admin"}, csrf_from=TEAM)
    assert changed.status_code == 303 and changed.headers["location"] == TEAM
    assert (await _db(settings, "SELECT role FROM memberships WHERE id = :i", i=member_id))[0].role == "admin"
    after = await console_page(client, TEAM)
    assert _member(after, email)[0] == "admin" and after.text_of(role="status") == f"{email} is now admin."
    removed = await post_form(client, f"{TEAM}/members/{member_id}/remove", {}, csrf_from=TEAM)
    assert removed.status_code == 303
    assert not await _db(settings, "SELECT 1 FROM memberships WHERE id = :i", i=member_id)
    actions = [r.action for r in await _db(settings, "SELECT action FROM audit_logs WHERE team_id = :t "
                                                     "ORDER BY created_at", t=owner["team_id"])]
    assert "member.role_changed" in actions and "member.removed" in actions


async def test_the_last_owner_stays_with_the_apis_message(client, settings):
    owner = await console_owner(client)
    page = await console_page(client, TEAM)
    own_id = _member_id(page, owner["email"])
    for path, fields in ((f"{TEAM}/members/{own_id}/role", {"role": "member"}),
                         (f"{TEAM}/members/{own_id}/remove", {})):
        refused = await post_form(client, path, fields, csrf_from=TEAM)
        assert refused.status_code == 409
        assert Page(refused.text).text_of(role="alert") == "A team keeps at least one owner"
    assert (await _db(settings, "SELECT role FROM memberships WHERE id = :i", i=own_id))[0].role == "owner"


async def test_an_admin_cannot_grant_or_touch_the_owner_role(client, settings):
    owner = await console_owner(client)
    await join_as(client, owner, "admin")
    page = await console_page(client, TEAM)
    own_id = _member_id(page, owner["email"])
    refused = await post_form(client, f"{TEAM}/members/{own_id}/remove", {}, csrf_from=TEAM)
    assert refused.status_code == 403
    assert Page(refused.text).text_of(role="alert") == "Only an owner, logged in, can grant or change the owner role"
    invite = await post_form(client, f"{TEAM}/invites", {"email": new_email(), "role": "owner"}, csrf_from=TEAM)
    assert invite.status_code == 403
    assert await _db(settings, "SELECT 1 FROM memberships WHERE id = :i", i=own_id)


async def test_an_invite_link_is_shown_once_and_can_be_revoked(client, settings):
    owner = await console_owner(client)
    email = new_email()
    created = await post_form(client, f"{TEAM}/invites", {"email": email, "role": "admin"}, csrf_from=TEAM)
    assert created.status_code == 200, created.text
    link = Page(created.text).text_of("code", id="invite-link")
    assert link.startswith("https://testserver.local/console/invites/accept?token=inv_")
    token = link.split("token=")[1]
    page = await console_page(client, TEAM)
    assert token not in (await client.get(TEAM)).text
    row = page.find("tr", data_invite_email=email)[0]
    assert "pending" in page.text_of("tr", data_invite_email=email)
    revoked = await post_form(client, f"{TEAM}/invites/{row.attrs['data-invite']}/revoke", {}, csrf_from=TEAM)
    assert revoked.status_code == 303
    assert "revoked" in (await console_page(client, TEAM)).text_of("tr", data_invite_email=email)
    assert (await _db(settings, "SELECT revoked_at IS NOT NULL AS r FROM invites WHERE id = :i",
                      i=row.attrs["data-invite"]))[0].r
    # The link works until it is revoked; afterwards the invite page refuses it.
    client.cookies.clear()
    used = await client.post("/console/invites/register", data={"invite": token, "email": email, "password": PASSWORD})
    assert used.status_code == 403 and Page(used.text).text_of(role="alert") == "This invite was revoked"
    assert owner


async def test_an_invalid_invite_gets_the_apis_validation_message(client):
    await console_owner(client)
    response = await post_form(client, f"{TEAM}/invites", {"email": "x", "role": "member"}, csrf_from=TEAM)
    assert response.status_code == 422
    assert Page(response.text).text_of(role="alert").startswith("email: Expected `str` of length >= 3")


async def test_the_retention_setting_is_changed_like_patch_team(client, settings):
    owner = await console_owner(client)
    changed = await post_form(client, f"{TEAM}/settings", {"retention_days": "90"}, csrf_from=TEAM)
    assert changed.status_code == 303
    assert (await _db(settings, "SELECT retention_days FROM teams WHERE id = :t", t=owner["team_id"]))[0][0] == 90
    page = await console_page(client, TEAM)
    assert page.find("input", name="retention_days")[0].attrs["value"] == "90"
    wrong = await post_form(client, f"{TEAM}/settings", {"retention_days": "0"}, csrf_from=TEAM)
    assert wrong.status_code == 422 and Page(wrong.text).text_of(role="alert").startswith("retention_days:")


async def test_the_audit_log_filters_by_action_actor_and_date_and_pages(client, settings):
    owner = await console_owner(client)
    for _ in range(3):
        assert (await post_form(client, f"{TEAM}/invites", {"role": "member"}, csrf_from=TEAM)).status_code == 200
    await post_form(client, f"{TEAM}/settings", {"retention_days": "40"}, csrf_from=TEAM)
    page = await console_page(client, f"{TEAM}?action=invite.created")
    assert [e.attrs["data-action"] for e in page.find("tr", data_audit="entry")] == ["invite.created"] * 3
    paged = await console_page(client, f"{TEAM}?action=invite.created&per_page=2")
    assert len(paged.find("tr", data_audit="entry")) == 2
    following = paged.find("a", rel="next")[0].attrs["href"]
    assert "action=invite.created" in following
    assert len((await console_page(client, following)).find("tr", data_audit="entry")) == 1
    mine = await console_page(client, f"{TEAM}?actor={owner['user_id']}")
    assert len(mine.find("tr", data_audit="entry")) >= 4
    assert not (await console_page(client, f"{TEAM}?until=2000-01-01")).find("tr", data_audit="entry")
    assert len((await console_page(client, f"{TEAM}?since=2000-01-01&action=team.updated")).find(
        "tr", data_audit="entry")) == 1
    bad = await client.get(f"{TEAM}?since=yesterday")
    assert bad.status_code == 422 and "since" in Page(bad.text).text_of(role="alert")


async def test_a_member_gets_no_forms_and_a_forged_post_is_refused(client, settings):
    owner = await console_owner(client)
    await join_as(client, owner, "member")
    page = await console_page(client, TEAM)
    assert not [f for f in page.find("form", method="post") if f.attrs.get("action") != "/console/logout"]
    own_id = _member_id(page, owner["email"])
    token = page.csrf_token()
    for path, fields in ((f"{TEAM}/invites", {"role": "member"}), (f"{TEAM}/settings", {"retention_days": "9"}),
                         (f"{TEAM}/members/{own_id}/role", {"role": "member"})):
        refused = await client.post(path, data={"csrf_token": token, **fields})
        assert refused.status_code == 403, path
        assert Page(refused.text).text_of(role="alert") in ("This action needs the owner or admin role",
                                                            "Only an owner, logged in, can grant or change the owner "
                                                            "role")
    assert (await _db(settings, "SELECT retention_days FROM teams WHERE id = :t", t=owner["team_id"]))[0][0] != 9


async def test_another_teams_member_or_invite_is_not_found(client, settings):
    first = await console_owner(client, team_name="One")
    assert (await post_form(client, f"{TEAM}/invites", {"role": "member"}, csrf_from=TEAM)).status_code == 200
    page = await console_page(client, TEAM)
    invite_id = page.find("tr", data_invite_email="")[0].attrs["data-invite"]
    member_id = _member_id(page, first["email"])
    await console_owner(client, team_name="Two")
    revoke = await post_form(client, f"{TEAM}/invites/{invite_id}/revoke", {}, csrf_from=TEAM)
    assert revoke.status_code == 404 and Page(revoke.text).text_of(role="alert") == "Invite not found"
    role = await post_form(client, f"{TEAM}/members/{member_id}/role", {"role": "member"}, csrf_from=TEAM)
    assert role.status_code == 404 and Page(role.text).text_of(role="alert") == "Member not found"
    assert (await _db(settings, "SELECT revoked_at FROM invites WHERE id = :i", i=invite_id))[0][0] is None


async def test_a_team_form_without_csrf_is_refused(client, settings):
    owner = await console_owner(client)
    response = await client.post(f"{TEAM}/settings", data={"retention_days": "77"})
    assert response.status_code == 403 and "security token" in Page(response.text).text_of(role="alert")
    assert (await _db(settings, "SELECT retention_days FROM teams WHERE id = :t", t=owner["team_id"]))[0][0] != 77


async def test_a_members_two_factor_status_is_shown(client, settings):
    owner = await console_owner(client)
    await _db(settings, "UPDATE users SET totp_enabled = true WHERE id = :u RETURNING id", u=owner["user_id"])
    assert _member(await console_page(client, TEAM), owner["email"]) == ("owner", "on")


async def test_the_pages_have_no_inline_script_style_or_handlers(client):
    await console_owner(client)
    webhook = await post_form(client, "/console/webhooks", {"endpoint": "http://127.0.0.1:9/hook",
                                                            "events": "email.sent"}, csrf_from="/console/webhooks")
    invite = await post_form(client, f"{TEAM}/invites", {"role": "member"}, csrf_from=TEAM)
    pages = [Page(webhook.text), Page(invite.text)]
    for path in ("/console/webhooks", "/console/suppressions", TEAM):
        pages.append(await console_page(client, path))
    for page in pages:
        assert not [e for e in page.elements if "style" in e.attrs or any(a.startswith("on") for a in e.attrs)]
        assert all(e.attrs.get("src") for e in page.find("script"))
        assert all(e.attrs.get("id") for e in page.find("input") if e.attrs.get("type") not in ("hidden",))
        labelled = {e.attrs["for"] for e in page.find("label")}
        assert all(e.attrs["id"] in labelled for e in [*page.find("input"), *page.find("select")]
                   if e.attrs.get("type") != "hidden")
