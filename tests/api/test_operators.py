"""Instance operators: /operator routes (operator sessions only, audited on the team) and `postyard-api admin`."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from dataclasses import dataclass

import pyotp
import pytest
from api_support import ROLES
from conftest import as_operator_cli, sign_up

from app.domain.operators.services import create_operator

PASSWORD = "correct horse battery staple"


@dataclass
class Operator:
    user_id: str
    email: str
    password: str
    csrf: dict[str, str]


async def _log_in(client, email: str, password: str) -> dict:
    response = await client.post("/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture
async def operator(client, settings) -> Operator:
    """A new operator (made as `postyard-api admin create-operator` makes one), logged in on `client`."""
    email = f"op{uuid.uuid4().hex[:8]}@example.test"
    user, password = await as_operator_cli(settings, lambda db: create_operator(db, email))
    info = await _log_in(client, email, password)
    return Operator(str(user.id), email, password, {"x-csrf-token": info["csrf_token"]})


def _owner_sql(postgres, sql: str) -> str:
    return postgres.psql(sql, user="postyard_owner", database="postyard")


ROUTES = [
    ("GET", "/operator/teams", None),
    ("POST", "/operator/teams/{team}/suspend", {"reason": "spam"}),
    ("POST", "/operator/teams/{team}/resume", None),
    ("POST", "/operator/teams/{team}/approve", None),
    ("PATCH", "/operator/teams/{team}/quotas", {"daily": 1}),
    ("POST", "/operator/invites", {}),
    ("GET", "/operator/invites", None),
    ("GET", "/operator/operators", None),
]


@pytest.mark.parametrize("method,path,body", ROUTES)
async def test_operator_routes_refuse_a_team_owners_session(client, team, method, path, body):
    info = (await sign_up(client, f"o{uuid.uuid4().hex[:8]}@example.test", PASSWORD)).json()
    response = await client.request(method, path.format(team=team.team_id), json=body,
                                     headers={"x-csrf-token": info["csrf_token"]})
    assert response.status_code == 403 and response.json()["name"] == "operator_required"


@pytest.mark.parametrize("method,path,body", ROUTES)
async def test_operator_routes_refuse_api_keys_and_anonymous_callers(client, team, method, path, body):
    with_key = await client.request(method, path.format(team=team.team_id), json=body, headers=team.headers)
    anonymous = await client.request(method, path.format(team=team.team_id), json=body)
    assert with_key.status_code == 403 and anonymous.status_code == 401


async def test_an_operators_writes_need_the_csrf_token(client, team, operator):
    response = await client.post(f"/operator/teams/{team.team_id}/suspend", json={"reason": "spam"})
    assert response.status_code == 403 and response.json()["name"] == "csrf_failed"


async def test_an_operator_lists_every_team_with_its_members_and_what_it_sent(client, team, other_team, operator,
                                                                                 postgres):
    _owner_sql(postgres, "INSERT INTO team_send_counters (team_id, period, period_start, sent) VALUES "
                         f"('{team.team_id}', 'day', (now() AT TIME ZONE 'UTC')::date, 7), "
                         f"('{team.team_id}', 'day', (now() AT TIME ZONE 'UTC')::date - 1, 100), "
                         f"('{team.team_id}', 'month', date_trunc('month', now() AT TIME ZONE 'UTC')::date, 42)")
    invite = (await client.post("/team/invites", json={}, headers=team.headers)).json()
    await client.post("/auth/register", json={"email": f"m{uuid.uuid4().hex[:8]}@example.test",
                                              "password": PASSWORD, "invite": invite["token"]})
    await _log_in(client, operator.email, operator.password)
    listed = {t["id"]: t for t in (await client.get("/operator/teams")).json()["data"]}
    mine = listed[str(team.team_id)]
    assert str(other_team.team_id) in listed
    assert (mine["members"], mine["sent_today"], mine["sent_this_month"]) == (1, 7, 42)
    assert mine["approved_at"] and mine["suspended_at"] is None and mine["daily_quota"] is None


async def test_suspending_a_team_keeps_the_reason_and_is_audited_on_that_team_as_the_operator(client, team,
                                                                                              operator):
    response = await client.post(f"/operator/teams/{team.team_id}/suspend", json={"reason": "phishing reports"},
                                 headers=operator.csrf)
    seen_by_team = (await client.get("/team", headers=team.headers)).json()
    audit = (await client.get("/audit-logs", headers=team.headers)).json()["data"][0]
    assert response.status_code == 200 and response.json()["suspension_reason"] == "phishing reports"
    assert seen_by_team["suspended"] is True and seen_by_team["suspension_reason"] == "phishing reports"
    assert (audit["action"], audit["actor_type"], audit["actor_id"]) == ("team.suspended", "operator",
                                                                         operator.user_id)
    assert audit["details"]["reason"] == "phishing reports"


async def test_resuming_a_team_clears_its_suspension_and_reason(client, team, operator):
    await client.post(f"/operator/teams/{team.team_id}/suspend", json={"reason": "spam"}, headers=operator.csrf)
    response = await client.post(f"/operator/teams/{team.team_id}/resume", headers=operator.csrf)
    audit = (await client.get("/audit-logs", headers=team.headers)).json()["data"][0]
    assert response.json()["suspended_at"] is None and response.json()["suspension_reason"] is None
    assert audit["action"] == "team.resumed"


async def test_a_suspension_needs_a_reason(client, team, operator):
    response = await client.post(f"/operator/teams/{team.team_id}/suspend", json={"reason": ""},
                                 headers=operator.csrf)
    assert response.status_code == 422


async def test_approving_a_team_of_open_sign_up_lets_it_send(client, team, operator, postgres):
    _owner_sql(postgres, f"UPDATE teams SET approved_at = NULL WHERE id = '{team.team_id}'")
    response = await client.post(f"/operator/teams/{team.team_id}/approve", headers=operator.csrf)
    audit = (await client.get("/audit-logs", headers=team.headers)).json()["data"][0]
    assert response.status_code == 200 and response.json()["approved_at"] is not None
    assert (await client.get("/team", headers=team.headers)).json()["approved"] is True
    assert audit["action"] == "team.approved" and audit["actor_id"] == operator.user_id


async def test_quotas_are_set_left_alone_when_absent_and_cleared_with_null(client, team, operator):
    path = f"/operator/teams/{team.team_id}/quotas"
    both = (await client.patch(path, json={"daily": 100, "monthly": 2000}, headers=operator.csrf)).json()
    daily_only = (await client.patch(path, json={"daily": 50}, headers=operator.csrf)).json()
    cleared = (await client.patch(path, json={"monthly": None}, headers=operator.csrf)).json()
    audit = (await client.get("/audit-logs", headers=team.headers)).json()["data"]
    assert (both["daily_quota"], both["monthly_quota"]) == (100, 2000)
    assert (daily_only["daily_quota"], daily_only["monthly_quota"]) == (50, 2000)
    assert (cleared["daily_quota"], cleared["monthly_quota"]) == (50, None)
    assert [e["action"] for e in audit[:3]] == ["team.quotas_changed"] * 3
    assert audit[0]["details"] == {"monthly_quota": None, "was": {"monthly_quota": 2000}}


@pytest.mark.parametrize("body", [{"daily": -1}, {"monthly": "many"}])
async def test_a_quota_is_a_number_of_messages(client, team, operator, body):
    response = await client.patch(f"/operator/teams/{team.team_id}/quotas", json=body, headers=operator.csrf)
    assert response.status_code == 422


async def test_an_unknown_team_answers_404(client, operator):
    response = await client.post(f"/operator/teams/{uuid.uuid4()}/resume", headers=operator.csrf)
    assert response.status_code == 404


async def test_an_operators_invite_starts_a_team_whose_audit_log_names_the_operator(client, operator):
    invite = (await client.post("/operator/invites", json={"email": "Founder@Example.test"},
                                headers=operator.csrf)).json()
    listed = (await client.get("/operator/invites")).json()["data"]
    client.cookies.clear()
    founder = await client.post("/auth/register", json={"email": "founder@example.test", "password": PASSWORD,
                                                        "team_name": "Founded", "invite": invite["token"]})
    audit = (await client.get("/audit-logs")).json()["data"][-1]
    assert invite["email"] == "founder@example.test" and invite["role"] == "owner" and invite["team_id"] is None
    assert invite["id"] in [i["id"] for i in listed] and founder.status_code == 201
    assert audit["action"] == "team.created" and audit["details"]["invited_by"] == operator.user_id


async def test_an_operator_revokes_an_invite_to_start_a_team(client, operator):
    invite = (await client.post("/operator/invites", json={}, headers=operator.csrf)).json()
    revoked = await client.delete(f"/operator/invites/{invite['id']}", headers=operator.csrf)
    client.cookies.clear()
    used = await client.post("/auth/register", json={"email": f"r{uuid.uuid4().hex[:6]}@example.test",
                                                     "password": PASSWORD, "team_name": "T", "invite": invite["token"]})
    assert revoked.status_code == 204 and used.status_code == 403


async def test_an_operator_sees_the_operators(client, operator):
    listed = (await client.get("/operator/operators")).json()["data"]
    assert operator.email in [o["email"] for o in listed]


# The CLI, run as on a host: `postyard-api admin ...` with the host's environment.

def _admin(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "app.cli", "admin", *args], env={**os.environ, **env},
                          capture_output=True, text=True, timeout=60, check=False)


def _printed(output: str) -> dict[str, str]:
    return dict(line.split(": ", 1) for line in output.splitlines() if ": " in line)


def test_the_cli_suspends_resumes_and_sets_quotas_audited_as_the_cli(env, team, postgres):
    suspended = _admin(env, "suspend", str(team.team_id), "--reason", "bounces over 10%")
    quota = _admin(env, "set-quota", str(team.team_id), "--daily", "500", "--monthly", "unlimited")
    listed = [json.loads(line) for line in _admin(env, "teams", "--json").stdout.splitlines()]
    resumed = _admin(env, "resume", str(team.team_id))
    mine = next(t for t in listed if t["id"] == str(team.team_id))
    audit = _owner_sql(postgres, f"SELECT action || ' ' || actor_type FROM audit_logs WHERE team_id = "
                                 f"'{team.team_id}' AND actor_type = 'cli' ORDER BY created_at").splitlines()
    assert suspended.returncode == quota.returncode == resumed.returncode == 0
    assert "suspended: bounces over 10%" in suspended.stdout and "active" in resumed.stdout
    assert (mine["suspension_reason"], mine["daily_quota"], mine["monthly_quota"]) == ("bounces over 10%", 500, None)
    assert audit[-3:] == ["team.suspended cli", "team.quotas_changed cli", "team.resumed cli"]


def test_the_cli_finds_a_team_by_its_exact_name(env, team, postgres):
    name = _owner_sql(postgres, f"SELECT name FROM teams WHERE id = '{team.team_id}'").strip()
    approved = _admin(env, "approve", name)
    assert approved.returncode == 0 and approved.stdout.startswith(str(team.team_id))


def test_the_cli_refuses_an_unknown_team_with_a_reason_and_exit_status_1(env):
    result = _admin(env, "resume", str(uuid.uuid4()))
    assert result.returncode == 1 and "Team not found" in result.stderr


async def test_the_clis_team_invite_prints_a_token_that_starts_a_team_once(env, client):
    made = await _run(_admin, env, "invite-team", "--email", "cli-founder@example.test")
    token = _printed(made.stdout)["invite token (shown once)"]
    body = {"email": "cli-founder@example.test", "password": PASSWORD, "team_name": "CLI", "invite": token}
    first = await client.post("/auth/register", json=body)
    second = await client.post("/auth/register", json=body)
    assert first.status_code == 201 and second.status_code == 403


async def _run(function, *args):
    """Run a blocking call (a CLI subprocess) without stalling the test's event loop."""
    return await asyncio.to_thread(function, *args)


@pytest.fixture
def empty_instance(env, postgres):
    """A freshly migrated database of its own: an instance nobody has made an operator on yet."""
    name = f"fresh_{uuid.uuid4().hex[:8]}"
    postgres.psql(f"CREATE DATABASE {name} OWNER postyard_owner;")
    postgres.psql("".join(f"GRANT CONNECT ON DATABASE {name} TO {role};" for role in ROLES))
    owner_url = postgres.url("postyard_owner", name)
    from app.db import migrate

    migrate.upgrade(owner_url)
    yield {**env, "POSTYARD_DATABASE_URL": owner_url, "POSTYARD_MIGRATION_DATABASE_URL": owner_url}
    postgres.psql(f"DROP DATABASE {name};")


def test_the_first_operator_is_made_once_and_its_password_printed_once(empty_instance):
    first = _admin(empty_instance, "create-operator", "--first", "operator@example.test")
    again = _admin(empty_instance, "create-operator", "--first", "someone-else@example.test")
    operators = _admin(empty_instance, "operators").stdout.splitlines()
    assert "operator password (shown once)" in _printed(first.stdout)
    assert again.returncode == 0 and "password" not in again.stdout.replace("password is unchanged", "")
    assert "operator@example.test" in again.stdout
    assert len(operators) == 1 and "operator@example.test" in operators[0]


def test_the_first_operator_is_never_an_account_someone_registered_before(empty_instance, postgres):
    database = empty_instance["POSTYARD_DATABASE_URL"].rsplit("/", 1)[1]
    postgres.psql("INSERT INTO users (id, email, password_hash) "
                  "VALUES (gen_random_uuid(), 'squatter@example.test', 'not-a-hash')", database=database)
    refused = _admin(empty_instance, "create-operator", "--first", "squatter@example.test")
    operators = _admin(empty_instance, "operators").stdout
    assert refused.returncode != 0 and "exists already" in refused.stderr
    assert operators.strip() == "no operators"


def test_the_cli_makes_more_operators_and_keeps_the_last_one(empty_instance):
    made = [_admin(empty_instance, "create-operator", f"op{i}@example.test") for i in range(2)]
    removed = _admin(empty_instance, "remove-operator", "op0@example.test")
    last = _admin(empty_instance, "remove-operator", "op1@example.test")
    assert all(m.returncode == 0 for m in made) and removed.returncode == 0
    assert last.returncode == 1 and "at least one operator" in last.stderr


async def test_an_operator_made_by_the_cli_logs_in_without_a_team_and_uses_the_operator_routes(client, env):
    made = await _run(_admin, env, "create-operator", f"new-op{uuid.uuid4().hex[:6]}@example.test")
    printed = _printed(made.stdout)
    info = await _log_in(client, printed["operator"], printed["operator password (shown once)"])
    listed = await client.get("/operator/teams")
    assert info["team_id"] is None and listed.status_code == 200


async def test_a_suspension_reason_is_one_line_of_printable_text(client, team, operator):
    response = await client.post(f"/operator/teams/{team.team_id}/suspend", json={"reason": "Spam\r\nBcc: x"},
                                 headers=operator.csrf)
    assert response.status_code == 422 and "control characters" in response.json()["message"]


async def test_an_operator_without_a_team_manages_their_own_account_and_turns_on_2fa(client, operator):
    me = await client.get("/auth/me")
    setup = await client.post("/auth/2fa/setup", headers=operator.csrf)
    enabled = await client.post("/auth/2fa/enable", json={"code": pyotp.TOTP(setup.json()["secret"]).now()},
                                headers=operator.csrf)
    client.cookies.clear()
    login = await _log_in(client, operator.email, operator.password)
    assert me.status_code == 200 and me.json()["team_id"] is None and me.json()["role"] is None
    assert enabled.status_code == 200 and login["mfa_required"] is True
    assert (await client.get("/operator/teams")).status_code == 401  # not before the second factor
