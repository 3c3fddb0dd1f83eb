"""The console's operator pages: teams, suspension, quotas, invites and the system's status, for operators only."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta

import msgspec
import pytest
from conftest import as_operator_cli
from console_pages import PASSWORD, Page, console_owner, console_page, post_form
from litestar.testing import AsyncTestClient
from sqlalchemy import text
from test_emails import message

from app.asgi import create_app
from app.domain.operators import system_status
from app.domain.operators.services import create_operator

HOME = "/console/operator"
STATUS = "/console/operator/status"


@pytest.fixture(autouse=True)
def _see_redirects(client) -> None:
    client.follow_redirects = False


async def sign_in_operator(client, settings) -> str:
    """A new operator (in no team), signed in to the console on `client`; their user id."""
    email = f"op{uuid.uuid4().hex[:8]}@example.test"
    user, password = await as_operator_cli(settings, lambda db: create_operator(db, email))
    client.cookies.clear()
    response = await client.post("/console/login", data={"email": email, "password": password})
    assert response.status_code == 303, response.text
    return str(user.id)


async def _db(settings, sql: str, **params) -> list:
    """Run `sql` as the database owner; the rows it returns (none for a change)."""
    result = await as_operator_cli(settings, lambda db: db.execute(text(sql), params))
    return result.all() if result.returns_rows else []


def _row_text(page: Page, team_id: uuid.UUID) -> str:
    """The text of the teams table's row of `team_id`."""
    row = page.find("tr", data_team=str(team_id))[0]
    return " ".join("".join(row.children_text).split())


def _team_path(team) -> str:
    return f"{HOME}/teams/{team.team_id}"


PAGES = [HOME, STATUS, "/console/operator/teams/{team}"]
POSTS = [("/console/operator/teams/{team}/suspend", {"reason": "spam"}),
         ("/console/operator/teams/{team}/resume", {}),
         ("/console/operator/teams/{team}/approve", {}),
         ("/console/operator/teams/{team}/quotas", {"daily": "1"}),
         ("/console/operator/invites", {}),
         (f"/console/operator/invites/{uuid.uuid4()}/revoke", {})]


async def test_a_team_owner_cannot_reach_any_operator_page_or_post(client, team, settings):
    owner = await console_owner(client)
    token = (await console_page(client, "/console/account")).csrf_token()
    for path in PAGES:
        response = await client.get(path.format(team=team.team_id))
        assert response.status_code == 403 and "for the instance&#39;s operators" in response.text, path
    for path, fields in POSTS:
        response = await client.post(path.format(team=team.team_id), data={"csrf_token": token, **fields})
        assert response.status_code == 403, path
    assert not (await console_page(client, "/console/")).find("a", href=HOME)
    rows = await _db(settings, "SELECT suspended_at, daily_quota FROM teams WHERE id = :t", t=team.team_id)
    assert rows == [(None, None)] and owner["user_id"]


async def test_without_a_session_the_operator_pages_redirect_to_sign_in(client, team):
    for path in PAGES:
        response = await client.get(path.format(team=team.team_id))
        assert response.status_code == 303 and response.headers["location"].startswith("/console/login"), path


async def test_the_teams_page_lists_each_team_with_its_state_and_volume(client, team, other_team, settings):
    await _db(settings, "UPDATE teams SET suspended_at = now(), suspension_reason = 'phishing' WHERE id = :t",
              t=other_team.team_id)
    await _db(settings, "UPDATE teams SET daily_quota = 10 WHERE id = :t", t=team.team_id)
    await _db(settings, "INSERT INTO team_send_counters (team_id, period, period_start, sent) VALUES "
                        "(:t, 'day', (now() AT TIME ZONE 'UTC')::date, 4)", t=team.team_id)
    await sign_in_operator(client, settings)
    page = await console_page(client, HOME)
    mine, theirs = _row_text(page, team.team_id), _row_text(page, other_team.team_id)
    assert "active" in mine and "4 of 10 (40%)" in mine
    assert "suspended" in theirs and "phishing" in theirs


async def test_suspending_refuses_the_teams_sends_and_resuming_lets_them_through(client, team, sender, settings):
    operator_id = await sign_in_operator(client, settings)
    suspended = await post_form(client, f"{_team_path(team)}/suspend", {"reason": "Phishing reports"},
                                csrf_from=_team_path(team))
    refused = await client.post("/emails", json=message(sender), headers=team.headers)
    page = await console_page(client, _team_path(team))
    resumed = await post_form(client, f"{_team_path(team)}/resume", {}, csrf_from=_team_path(team))
    sent = await client.post("/emails", json=message(sender), headers=team.headers)
    audit = await _db(settings, "SELECT action, actor_type, actor_id FROM audit_logs WHERE team_id = :t "
                                "AND action LIKE 'team.%' ORDER BY created_at", t=team.team_id)
    assert suspended.status_code == 303 and suspended.headers["location"] == _team_path(team)
    assert refused.status_code == 403 and refused.json()["name"] == "team_suspended"
    assert "Phishing reports" in refused.json()["message"]
    assert page.text_of("dd", data_figure="state") == "suspended"
    assert page.text_of("dd", data_figure="reason") == "Phishing reports"
    assert resumed.status_code == 303 and sent.status_code in (200, 201, 202), sent.text
    assert [tuple(r) for r in audit[-2:]] == [("team.suspended", "operator", operator_id),
                                              ("team.resumed", "operator", operator_id)]


async def test_a_suspension_without_a_reason_shows_the_apis_message_and_changes_nothing(client, team, settings):
    await sign_in_operator(client, settings)
    response = await post_form(client, f"{_team_path(team)}/suspend", {"reason": "  "}, csrf_from=_team_path(team))
    assert response.status_code == 422
    assert "reason must be 1 to 500 characters" in Page(response.text).text_of("p", role="alert")
    assert await _db(settings, "SELECT suspended_at FROM teams WHERE id = :t", t=team.team_id) == [(None,)]


async def test_quotas_are_shown_set_and_cleared(client, team, settings):
    operator_id = await sign_in_operator(client, settings)
    before = await console_page(client, _team_path(team))
    saved = await post_form(client, f"{_team_path(team)}/quotas", {"daily": "100", "monthly": "2000"},
                            csrf_from=_team_path(team))
    after = await console_page(client, _team_path(team))
    cleared = await post_form(client, f"{_team_path(team)}/quotas", {"daily": "50", "monthly": ""},
                              csrf_from=_team_path(team))
    rows = await _db(settings, "SELECT daily_quota, monthly_quota FROM teams WHERE id = :t", t=team.team_id)
    audit = await _db(settings, "SELECT actor_id FROM audit_logs WHERE team_id = :t AND action = "
                                "'team.quotas_changed'", t=team.team_id)
    assert before.text_of("dd", data_figure="daily-quota") == "unlimited"
    assert saved.status_code == 303 and cleared.status_code == 303
    assert after.text_of("dd", data_figure="daily-quota") == "100"
    assert after.text_of("dd", data_figure="monthly-quota") == "2000"
    assert after.find("input", name="daily")[0].attrs["value"] == "100"
    assert rows == [(50, None)] and [r[0] for r in audit] == [operator_id, operator_id]


async def test_a_negative_quota_is_refused_with_the_apis_status(client, team, settings):
    await sign_in_operator(client, settings)
    response = await post_form(client, f"{_team_path(team)}/quotas", {"daily": "-1"}, csrf_from=_team_path(team))
    assert response.status_code == 422 and Page(response.text).find("p", role="alert")
    assert await _db(settings, "SELECT daily_quota FROM teams WHERE id = :t", t=team.team_id) == [(None,)]


async def test_approving_a_team_of_open_sign_up(client, team, settings):
    await _db(settings, "UPDATE teams SET approved_at = NULL WHERE id = :t", t=team.team_id)
    await sign_in_operator(client, settings)
    assert (await console_page(client, _team_path(team))).text_of("dd", data_figure="state") == "awaiting approval"
    response = await post_form(client, f"{_team_path(team)}/approve", {}, csrf_from=_team_path(team))
    assert response.status_code == 303
    assert (await console_page(client, _team_path(team))).text_of("dd", data_figure="state") == "active"


async def test_an_invite_link_is_shown_once_and_starts_a_team(client, settings):
    await sign_in_operator(client, settings)
    response = await post_form(client, "/console/operator/invites", {"email": "Founder.C@Example.test"},
                               csrf_from=HOME)
    link = Page(response.text).text_of("code", id="invite-link")
    listed = await console_page(client, HOME)
    token = link.split("token=", 1)[1]
    client.cookies.clear()
    founder = await client.post("/auth/register", json={"email": "founder.c@example.test", "password": PASSWORD,
                                                        "team_name": "Founded", "invite": token})
    assert response.status_code == 201 and link.startswith("https://testserver.local/console/invites/accept?token=")
    assert token not in listed.text and "founder.c@example.test" in listed.text
    assert founder.status_code == 201, founder.text


async def test_an_operator_form_without_the_csrf_token_is_refused(client, team, settings):
    await sign_in_operator(client, settings)
    response = await client.post(f"{_team_path(team)}/suspend", data={"reason": "spam"})
    wrong = await client.post(f"{_team_path(team)}/suspend", data={"reason": "spam", "csrf_token": "nope"})
    assert response.status_code == 403 and wrong.status_code == 403
    assert "security token" in Page(response.text).text
    assert await _db(settings, "SELECT suspended_at FROM teams WHERE id = :t", t=team.team_id) == [(None,)]


def _statuses(html: str) -> dict[str, str]:
    """Each check's name and status, from the status page's checks made by the API host (the hosts' own
    reports follow in sections of their own, tests/api/test_host_reports.py)."""
    page = Page(html.split('<section class="host-status"', 1)[0])
    names = [row.attrs["data-check"] for row in page.find("tr") if "data-check" in row.attrs]
    states = [span.attrs["data-status"] for span in page.find("span") if "data-status" in span.attrs]
    return dict(zip(names, states, strict=True))


async def test_the_status_page_shows_the_database_ok_and_the_mail_queue_per_host(client, team, settings):
    await _db(settings, "INSERT INTO postfix_log_positions (mail_host, logged_through, updated_at) VALUES "
                        "(:live, now(), now()), (:stale, now() - interval '1 hour', now() - interval '1 hour') "
                        "ON CONFLICT (mail_host) DO UPDATE SET updated_at = EXCLUDED.updated_at",
              live="mx-live.test", stale="mx-stale.test")
    await sign_in_operator(client, settings)
    response = await client.get(STATUS)
    statuses = _statuses(response.text)
    assert response.status_code == 200
    assert statuses["Database"] == "ok" and statuses["Schema"] == "ok" and statuses["Redis"] == "ok"
    assert statuses["Mail queue: mx-live.test"] == "ok"
    assert statuses["Mail queue: mx-stale.test"] == "error"
    assert "stopped recording" in Page(response.text).text
    for name in ("API certificate", "Internal CA", "PostgreSQL certificate", "Release", "Host reports"):
        assert name in statuses


async def test_the_status_page_reports_redis_down_as_degraded(settings):
    closed = msgspec.structs.replace(settings, redis_url="redis://127.0.0.1:1/0")
    async with AsyncTestClient(app=create_app(closed), base_url="https://testserver.local") as c:
        c.follow_redirects = False
        await sign_in_operator(c, settings)
        response = await c.get(STATUS)
    statuses = _statuses(response.text)
    assert response.status_code == 200 and statuses["Database"] == "ok"
    assert statuses["Redis"] == "warning" and "degraded" in Page(response.text).text


def _certificate(tmp_path, days: int) -> str:
    """A self-signed certificate valid for `days` more days, as a PEM file; its path."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "api.example.test")])
    now = datetime.now(UTC)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                   .serial_number(1).not_valid_before(now - timedelta(days=1))
                   .not_valid_after(now + timedelta(days=days, hours=1)).sign(key, hashes.SHA256()))
    path = tmp_path / f"cert-{days}.pem"
    path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return str(path)


@pytest.mark.parametrize("days,status", [(90, "ok"), (10, "warning"), (2, "error")])
def test_a_certificate_shows_its_days_left(tmp_path, days, status):
    check = system_status._certificate_file("API certificate", _certificate(tmp_path, days), datetime.now(UTC))
    assert (check.status, check.reason.split()[0]) == (status, str(days))


async def test_a_check_that_does_not_answer_in_time_is_an_error_and_does_not_hold_the_page():
    async def never() -> list:
        await asyncio.sleep(60)
        return []

    started = time.monotonic()
    [check] = await system_status._bounded("Slow", never)
    assert check.status == "error" and "no answer within" in check.reason
    assert time.monotonic() - started < system_status.CHECK_TIMEOUT + 1


async def test_the_api_role_sees_the_mail_queue_only_in_an_operators_transaction(client, settings):
    from sqlalchemy.ext.asyncio import create_async_engine

    owner = await console_owner(client)
    operator_id = await sign_in_operator(client, settings)
    await _db(settings, "INSERT INTO postfix_log_positions (mail_host, logged_through) VALUES ('mx-q.test', now()) "
                        "ON CONFLICT DO NOTHING")
    engine = create_async_engine(settings.database_url)  # the API's role
    try:
        seen = {}
        for who, user_id in (("owner", owner["user_id"]), ("operator", operator_id)):
            async with engine.begin() as conn:
                await conn.execute(text("SELECT set_config('app.user_id', :u, true)"), {"u": user_id})
                seen[who] = (await conn.execute(text("SELECT count(*) FROM postyard_mail_queue()"))).scalar_one()
    finally:
        await engine.dispose()
    assert seen["owner"] == 0 and seen["operator"] >= 1
