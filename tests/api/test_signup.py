"""Sign-up modes (POSTYARD_SIGNUP), one-time invites from operators and teams, and what registration reveals."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import msgspec
import pytest
import redis
from conftest import new_team_invite, sign_up
from litestar.testing import AsyncTestClient
from test_emails import message

from app.asgi import create_app

PASSWORD = "correct horse battery staple"


def _email() -> str:
    return f"s{uuid.uuid4().hex[:10]}@example.test"


def _register(client: AsyncTestClient, email: str, invite: str | None, password: str = PASSWORD, **extra: str):
    body = {"email": email, "password": password, **extra}
    if invite is not None:
        body["invite"] = invite
    return client.post("/auth/register", json=body)


async def _client_with(settings, **changes):
    return AsyncTestClient(app=create_app(msgspec.structs.replace(settings, **changes)),
                           base_url="https://testserver.local")


@pytest.fixture
async def open_client(settings):
    async with await _client_with(settings, signup="open") as c:
        yield c


@pytest.fixture
async def closed_client(settings):
    async with await _client_with(settings, signup="closed") as c:
        yield c


async def _team_invite(client, team, **body) -> dict:
    response = await client.post("/team/invites", json=body, headers=team.headers)
    assert response.status_code == 201, response.text
    return response.json()


async def test_sign_up_without_an_invite_is_refused_by_default(client):
    response = await _register(client, _email(), None, team_name="Mine")
    assert response.status_code == 403 and response.json()["name"] == "invite_required"


async def test_an_operators_invite_starts_an_approved_team_owned_by_the_new_user(client, settings):
    response = await _register(client, _email(), await new_team_invite(settings), team_name="Invited")
    team = (await client.get("/team")).json()
    assert response.status_code == 201 and response.json()["role"] == "owner"
    assert team["name"] == "Invited" and team["approved"] is True


async def test_an_operators_invite_needs_a_team_name_and_stays_usable_without_one(client, settings):
    invite = await new_team_invite(settings)
    nameless = await _register(client, _email(), invite)
    named = await _register(client, _email(), invite, team_name="Named")
    assert nameless.status_code == 422 and named.status_code == 201


async def test_a_team_invite_joins_that_team_with_the_invites_role(client, team):
    invite = await _team_invite(client, team, role="admin")
    email = _email()
    joined = await _register(client, email, invite["token"], team_name="ignored")
    members = (await client.get("/team/members", headers=team.headers)).json()["data"]
    assert joined.status_code == 201 and joined.json()["team_id"] == str(team.team_id)
    assert {"email": email, "role": "admin"} in [{"email": m["email"], "role": m["role"]} for m in members]


async def test_an_invite_works_once(client, settings):
    invite = await new_team_invite(settings)
    first = await _register(client, _email(), invite, team_name="A")
    again = await _register(client, _email(), invite, team_name="B")
    assert first.status_code == 201
    assert again.status_code == 403 and again.json() == {
        "statusCode": 403, "name": "invalid_invite", "message": "This invite was already used"}


async def test_an_expired_invite_is_refused(client, team, postgres):
    invite = await _team_invite(client, team)
    postgres.psql(f"UPDATE invites SET expires_at = now() - interval '1 minute' WHERE id = '{invite['id']}'",
                  user="postyard_owner", database="postyard")
    response = await _register(client, _email(), invite["token"])
    assert response.status_code == 403 and response.json()["message"] == "This invite has expired"


async def test_a_revoked_invite_is_refused(client, team):
    invite = await _team_invite(client, team)
    revoked = await client.delete(f"/team/invites/{invite['id']}", headers=team.headers)
    response = await _register(client, _email(), invite["token"])
    assert revoked.status_code == 204
    assert response.status_code == 403 and response.json()["message"] == "This invite was revoked"


async def test_an_invite_for_one_address_refuses_another_and_stays_usable_by_its_own(client, team):
    email = _email()
    invite = await _team_invite(client, team, email=email.upper())
    stranger = await _register(client, _email(), invite["token"])
    invitee = await _register(client, email, invite["token"])
    assert stranger.status_code == 403 and stranger.json()["message"] == "This invite is for another email address"
    assert invitee.status_code == 201


@pytest.mark.parametrize("token", ["inv_" + "A" * 43, "not-an-invite", "inv_\u00e9" * 3])
async def test_an_unknown_or_malformed_invite_is_refused(client, token):
    response = await _register(client, _email(), token, team_name="T")
    assert response.status_code == 403 and response.json()["message"] == "This invite does not exist"


async def test_of_concurrent_sign_ups_with_one_invite_exactly_one_succeeds(client, settings):
    invite = await new_team_invite(settings)
    answers = await asyncio.gather(*[_register(client, _email(), invite, team_name=f"T{i}") for i in range(8)])
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [201] + [403] * 7


async def test_registering_an_address_that_has_an_account_with_its_password_joins_that_account(client, team):
    email = _email()
    first = (await sign_up(client, email, PASSWORD)).json()
    invite = await _team_invite(client, team, role="member")
    client.cookies.clear()
    joined = await _register(client, email, invite["token"])
    assert joined.status_code == 201
    assert joined.json()["user_id"] == first["user_id"] and joined.json()["team_id"] == str(team.team_id)


async def test_registering_an_address_that_has_an_account_with_another_password_is_refused_without_saying_so(
        client, team):
    email = _email()
    await sign_up(client, email, PASSWORD)
    client.cookies.clear()
    invite = await _team_invite(client, team)
    refused = await _register(client, email, invite["token"], password="another password!!")
    fresh = await _register(client, _email(), invite["token"])
    assert refused.status_code == 403 and set(refused.json()) == {"statusCode", "name", "message"}
    assert "exist" not in refused.json()["message"] and "already" not in refused.json()["message"]
    assert fresh.status_code == 201  # the refusal left the invite unused


async def test_a_member_cannot_invite_and_only_an_owner_invites_an_owner(client, team):
    admin_invite = await _team_invite(client, team, role="admin")
    admin = (await _register(client, _email(), admin_invite["token"])).json()
    as_admin = {"x-csrf-token": admin["csrf_token"]}
    owner_by_admin = await client.post("/team/invites", json={"role": "owner"}, headers=as_admin)
    member_invite = await _team_invite(client, team, role="member")
    client.cookies.clear()
    member = (await _register(client, _email(), member_invite["token"])).json()
    by_member = await client.post("/team/invites", json={}, headers={"x-csrf-token": member["csrf_token"]})
    assert owner_by_admin.status_code == 403 and by_member.status_code == 403


async def test_an_api_key_cannot_invite_an_owner(client, team):
    response = await client.post("/team/invites", json={"role": "owner"}, headers=team.headers)
    assert response.status_code == 403 and response.json()["name"] == "insufficient_role"


async def test_an_invite_is_refused_once_its_maker_may_no_longer_grant_its_role(client, team):
    admin_invite = await _team_invite(client, team, role="admin")
    admin = (await _register(client, _email(), admin_invite["token"])).json()
    made = await client.post("/team/invites", json={"role": "admin"}, headers={"x-csrf-token": admin["csrf_token"]})
    client.cookies.clear()
    members = (await client.get("/team/members", headers=team.headers)).json()["data"]
    admin_member = next(m for m in members if m["user_id"] == admin["user_id"])
    removed = await client.delete(f"/team/members/{admin_member['id']}", headers=team.headers)
    refused = await _register(client, _email(), made.json()["token"])
    assert made.status_code == 201 and removed.status_code == 204
    assert refused.status_code == 403 and refused.json()["name"] == "invalid_invite"
    assert "no longer grant" in refused.json()["message"]


async def test_members_are_no_longer_added_directly(client, team):
    response = await client.post("/team/members", json={"email": _email(), "role": "member"}, headers=team.headers)
    assert response.status_code == 405


async def test_team_invites_are_listed_without_their_tokens_and_audited(client, team):
    invite = await _team_invite(client, team, email=_email())
    listed = (await client.get("/team/invites", headers=team.headers)).json()["data"]
    audit = (await client.get("/audit-logs", headers=team.headers)).json()["data"]
    mine = next(i for i in listed if i["id"] == invite["id"])
    assert mine["status"] == "pending" and "token" not in mine and invite["token"] not in str(listed)
    assert audit[0]["action"] == "invite.created" and audit[0]["resource_id"] == invite["id"]


async def test_a_logged_in_user_accepts_an_invite_and_the_session_moves_to_that_team(client, team):
    info = (await sign_up(client, _email(), PASSWORD)).json()
    invite = await _team_invite(client, team, role="member")
    accepted = await client.post("/invites/accept", json={"token": invite["token"]},
                                 headers={"x-csrf-token": info["csrf_token"]})
    me = (await client.get("/auth/me")).json()
    assert accepted.status_code == 200 and accepted.json()["role"] == "member"
    assert me["team_id"] == str(team.team_id) and me["role"] == "member"


async def test_accepting_an_invite_needs_a_session_and_its_csrf_token(client, team):
    invite = await _team_invite(client, team)
    anonymous = await client.post("/invites/accept", json={"token": invite["token"]})
    with_key = await client.post("/invites/accept", json={"token": invite["token"]}, headers=team.headers)
    await sign_up(client, _email(), PASSWORD)
    without_csrf = await client.post("/invites/accept", json={"token": invite["token"]})
    assert (anonymous.status_code, with_key.status_code, without_csrf.status_code) == (401, 403, 403)


async def test_closed_sign_up_refuses_even_with_an_invite(closed_client, settings):
    response = await _register(closed_client, _email(), await new_team_invite(settings), team_name="T")
    assert response.status_code == 403 and response.json()["name"] == "signup_closed"


async def test_open_sign_up_starts_a_team_that_awaits_approval(open_client):
    response = await _register(open_client, _email(), None, team_name="Open")
    team = (await open_client.get("/team")).json()
    assert response.status_code == 201 and response.json()["role"] == "owner" and team["approved"] is False


async def test_open_sign_up_still_honours_an_invite(open_client, team):
    invite = await _team_invite(open_client, team)
    response = await _register(open_client, _email(), invite["token"])
    assert response.status_code == 201 and response.json()["team_id"] == str(team.team_id)


@pytest.mark.parametrize("mode", ["open", "invite", "closed"])
async def test_sign_up_is_limited_per_address_in_every_mode(settings, redis_port, mode):
    redis.Redis(port=redis_port).flushdb()
    async with await _client_with(settings, signup=mode, anonymous_rate_limit=2) as limited:
        statuses = [(await _register(limited, _email(), None, team_name="T")).status_code for _ in range(3)]
    redis.Redis(port=redis_port).flushdb()
    assert 429 not in statuses[:2] and statuses[2] == 429


async def test_a_member_can_neither_reschedule_nor_cancel_a_teams_email(client, team, sender, postgres):
    later = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    sent = await client.post("/emails", json=message(sender, scheduled_at=later), headers=team.headers)
    email_id = sent.json()["id"]
    member_invite = await _team_invite(client, team, role="member")
    client.cookies.clear()
    member = (await _register(client, _email(), member_invite["token"])).json()
    as_member = {"x-csrf-token": member["csrf_token"]}
    moved = await client.patch(f"/emails/{email_id}", json={"scheduled_at": later}, headers=as_member)
    canceled = await client.post(f"/emails/{email_id}/cancel", headers=as_member)
    state = postgres.psql(f"SELECT state FROM emails WHERE id = '{email_id}'", user="postyard_owner",
                          database="postyard").strip()
    assert moved.status_code == 403 and canceled.status_code == 403 and state == "queued"
