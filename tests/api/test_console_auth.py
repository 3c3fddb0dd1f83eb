"""Signing in to the console (password, TOTP), CSRF on its forms, signing out, the account page, invites and
the console's Content Security Policy."""

from __future__ import annotations

import logging
import time

import pyotp
import pytest
from conftest import as_operator_cli
from console_pages import (
    HOST,
    PASSWORD,
    SESSION_COOKIE,
    Page,
    console_owner,
    console_page,
    new_email,
    post_form,
)
from sqlalchemy import text

from app.lib.headers import CONSOLE_CSP


@pytest.fixture(autouse=True)
def _see_redirects(request) -> None:
    if "client" in request.fixturenames:
        request.getfixturevalue("client").follow_redirects = False


async def _sign_in(client, email: str, password: str = PASSWORD, next_path: str = ""):
    client.cookies.clear()
    return await client.post("/console/login", data={"email": email, "password": password, "next": next_path})


async def _enable_totp(client) -> str:
    """Turn TOTP on through the console's account page; returns the secret it showed."""
    setup = Page((await post_form(client, "/console/account/totp", {}, csrf_from="/console/account")).text)
    secret = setup.text_of("code", id="totp-secret")
    assert setup.find("img", alt="QR code of the two-factor secret")[0].attrs["src"].startswith(
        "data:image/svg+xml;base64,")
    enabled = await post_form(client, "/console/account/totp/enable", {"code": pyotp.TOTP(secret).now(),
                                                                       "csrf_token": setup.csrf_token()})
    assert enabled.status_code == 200, enabled.text
    assert len(Page(enabled.text).find("code")) == 10
    return secret


async def test_an_unauthenticated_page_request_redirects_to_sign_in(client):
    response = await client.get("/console/")
    assert response.status_code == 303 and response.headers["location"] == "/console/login?next=/console"


async def test_signing_in_with_a_password_opens_the_teams_console(client):
    email = new_email()
    await console_owner(client, email, team_name="Harbour Freight")
    response = await _sign_in(client, email, next_path="/console/account")
    assert response.status_code == 303 and response.headers["location"] == "/console/account"
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "secure" in cookie and "samesite=strict" in cookie
    page = await console_page(client, "/console/")
    assert "Harbour Freight" in page.text and email in page.text
    nav = [" ".join("".join(a.children_text).split()) for a in page.find("a") if a.attrs.get("href", "").startswith(
        "/console/")]
    assert {"Overview", "Emails", "Domains", "API keys", "Webhooks", "Team"} <= set(nav) and "Operator" not in nav


async def test_a_wrong_password_shows_the_apis_message_with_its_status(client):
    email = new_email()
    await console_owner(client, email)
    response = await _sign_in(client, email, password="not the password")
    assert response.status_code == 401
    page = Page(response.text)
    assert page.text_of(role="alert") == "Email or password is wrong"
    assert page.find("input", name="email")[0].attrs["value"] == email


async def test_signing_in_never_goes_back_to_another_origin(client):
    email = new_email()
    await console_owner(client, email)
    response = await _sign_in(client, email, next_path="//evil.example/console/")
    assert response.headers["location"] == "/console/"


async def test_signing_in_with_totp_needs_the_second_factor(client):
    email = new_email()
    await console_owner(client, email)
    secret = await _enable_totp(client)
    first = await _sign_in(client, email)
    assert first.status_code == 303 and first.headers["location"].startswith("/console/login/totp")
    assert (await client.get("/console/")).status_code == 303
    form = await console_page(client, first.headers["location"])
    wrong = await client.post("/console/login/totp", data={"csrf_token": form.csrf_token(), "code": "000000"})
    assert wrong.status_code == 401 and Page(wrong.text).text_of(role="alert") == "The code is wrong"
    # The current step's code enabled 2FA and is spent; the next step's is within the accepted skew.
    second = await client.post("/console/login/totp", data={
        "csrf_token": form.csrf_token(), "code": pyotp.TOTP(secret).at(time.time() + 30), "next": "/console/"})
    assert second.status_code == 303 and second.headers["location"] == "/console/"
    assert (await client.get("/console/")).status_code == 200


async def test_a_form_without_its_csrf_token_is_refused_and_changes_nothing(client):
    email = new_email()
    await console_owner(client, email)
    change = {"current_password": PASSWORD, "new_password": PASSWORD + "2"}
    for fields in (change, {**change, "csrf_token": "wrong"}):
        response = await client.post("/console/account/password", data=fields)
        assert response.status_code == 403 and "text/html" in response.headers["content-type"]
        assert "security token" in Page(response.text).text_of(role="alert")
    assert (await _sign_in(client, email)).headers["location"] == "/console/"


async def test_a_form_sent_from_another_site_is_refused(client):
    email = new_email()
    await console_owner(client, email)
    response = await client.post("/console/login", data={"email": email, "password": PASSWORD},
                                 headers={"origin": "https://evil.example", "sec-fetch-site": "cross-site"})
    assert response.status_code == 403


async def test_signing_out_revokes_the_session(client, settings):
    await console_owner(client)
    cookie = client.cookies.get(SESSION_COOKIE)
    response = await post_form(client, "/console/logout", {}, csrf_from="/console/account")
    assert response.status_code == 303 and response.headers["location"] == "/console/login?m=signed-out"
    client.cookies.set(SESSION_COOKIE, cookie, domain=HOST)
    assert (await client.get("/console/")).status_code == 303
    assert (await client.get("/auth/me")).status_code == 401


async def test_a_password_change_signs_out_the_other_sessions_only(client):
    email = new_email()
    await console_owner(client, email)
    other = client.cookies.get(SESSION_COOKIE)
    await _sign_in(client, email)
    response = await post_form(client, "/console/account/password",
                               {"current_password": PASSWORD, "new_password": PASSWORD + "2"},
                               csrf_from="/console/account")
    assert response.status_code == 303
    page = await console_page(client, "/console/account")
    assert "Your other sessions are signed out" in page.text_of(role="status")
    client.cookies.set(SESSION_COOKIE, other, domain=HOST)
    assert (await client.get("/auth/me")).status_code == 401
    assert (await _sign_in(client, email, PASSWORD + "2")).headers["location"] == "/console/"


async def test_a_wrong_current_password_is_shown_on_the_account_page(client):
    await console_owner(client)
    response = await post_form(client, "/console/account/password",
                               {"current_password": "not it at all", "new_password": PASSWORD + "2"},
                               csrf_from="/console/account")
    assert response.status_code == 403
    assert Page(response.text).text_of(role="alert") == "The current password is wrong"


async def test_a_short_new_password_gets_the_apis_validation_message(client):
    await console_owner(client)
    response = await post_form(client, "/console/account/password",
                               {"current_password": PASSWORD, "new_password": "short"}, csrf_from="/console/account")
    assert response.status_code == 422
    assert Page(response.text).text_of(role="alert").startswith("new_password: Expected `str` of length >= 12")


async def test_an_invite_accepted_in_the_console_makes_a_member_who_can_sign_in(client, settings):
    owner = await console_owner(client, team_name="Dockside")
    invite = await client.post("/team/invites", json={"email": (email := new_email()), "role": "member"},
                               headers={"x-csrf-token": owner["csrf_token"]})
    assert invite.status_code == 201, invite.text
    client.cookies.clear()
    token = invite.json()["token"]
    form = await console_page(client, f"/console/invites/accept?token={token}")
    assert form.find("input", name="invite")[0].attrs["value"] == token
    joined = await client.post("/console/invites/register", data={"invite": token, "email": email,
                                                                  "password": PASSWORD})
    assert joined.status_code == 303, joined.text
    assert "Dockside" in (await console_page(client, "/console/")).text
    assert (await _sign_in(client, email)).headers["location"] == "/console/"
    roles = await as_operator_cli(settings, lambda db: db.execute(text(
        "SELECT m.role FROM memberships m JOIN users u ON u.id = m.user_id WHERE u.email = :e"), {"e": email}))
    assert [r.role for r in roles] == ["member"]


async def test_a_used_invite_shows_the_apis_refusal(client):
    owner = await console_owner(client)
    invite = await client.post("/team/invites", json={"email": (email := new_email()), "role": "member"},
                               headers={"x-csrf-token": owner["csrf_token"]})
    token = invite.json()["token"]
    client.cookies.clear()
    fields = {"invite": token, "email": email, "password": PASSWORD}
    assert (await client.post("/console/invites/register", data=fields)).status_code == 303
    client.cookies.clear()
    again = await client.post("/console/invites/register", data=fields)
    assert again.status_code == 403 and Page(again.text).find(role="alert")


async def test_console_pages_carry_a_csp_without_unsafe_sources(client):
    await console_owner(client)
    for path in ("/console/", "/console/account", "/console/static/console.css", "/console/no-such-page"):
        response = await client.get(path)
        csp = response.headers["content-security-policy"]
        assert csp == CONSOLE_CSP and "unsafe-" not in csp, path
    client.cookies.clear()
    assert (await client.get("/console/login")).headers["content-security-policy"] == CONSOLE_CSP


async def test_console_pages_have_no_inline_script_style_or_handlers(client):
    await console_owner(client)
    for path in ("/console/", "/console/account", "/console/login"):
        page = Page((await client.get(path)).text)
        assert all(e.attrs.get("src") for e in page.find("script")), path
        assert not page.find("style"), path
        assert not [e for e in page.elements if "style" in e.attrs or any(a.startswith("on") for a in e.attrs)], path
        assert all(page.find("label", **{"for": i.attrs["id"]}) for i in page.find("input")
                   if i.attrs.get("type") != "hidden"), path


async def test_an_unknown_console_page_is_an_html_404(client):
    await console_owner(client)
    response = await client.get("/console/no-such-page")
    assert response.status_code == 404


async def test_an_operator_sees_the_operator_page_in_the_navigation(client, postgres):
    owner = await console_owner(client)
    postgres.psql(f"UPDATE users SET is_operator = true WHERE id = '{owner['user_id']}'", user="postyard_owner",
                  database="postyard")
    page = await console_page(client, "/console/account")
    assert page.find("a", href="/console/operator")


async def test_text_from_the_database_is_escaped_on_the_page(client):
    await console_owner(client, team_name='<script src="https://evil.example/x.js"></script>')
    response = await client.get("/console/")
    assert '&lt;script src=&#34;https://evil.example/x.js&#34;&gt;' in response.text
    assert [e.attrs["src"] for e in Page(response.text).find("script")] == ["/console/static/console.js"]


def test_an_unexpected_failure_is_an_error_page_without_its_details():
    from litestar import Request

    from app.console.errors import console_exception_handlers

    scope = {"type": "http", "method": "GET", "path": "/console/", "raw_path": b"/console/", "root_path": "",
             "scheme": "https", "query_string": b"", "headers": [], "server": ("testserver.local", 443),
             "client": ("192.0.2.1", 1), "state": {}, "path_params": {}}
    logging.disable(logging.CRITICAL)
    try:
        response = console_exception_handlers[Exception](Request(scope), RuntimeError("connection string"))
    finally:
        logging.disable(logging.NOTSET)
    assert response.status_code == 500 and response.media_type == "text/html"
    page = Page(response.content)
    assert page.text_of(role="alert") == "Internal server error" and "connection string" not in response.content


async def test_sign_ins_and_account_changes_in_the_console_are_in_the_audit_log(client):
    email = new_email()
    await console_owner(client, email)
    await _sign_in(client, email, password="not the password")
    await _sign_in(client, email)
    await post_form(client, "/console/account/password", {"current_password": PASSWORD,
                                                          "new_password": PASSWORD + "2"}, csrf_from="/console/account")
    await _enable_totp(client)
    actions = {entry["action"] for entry in (await client.get("/audit-logs")).json()["data"]}
    assert {"login.failed", "login.succeeded", "user.password_changed", "user.2fa_enabled"} <= actions


async def test_a_signed_in_user_joins_another_team_from_its_invite(client):
    owner = await console_owner(client, team_name="Quayside")
    invite = await client.post("/team/invites", json={"email": (email := new_email()), "role": "admin"},
                               headers={"x-csrf-token": owner["csrf_token"]})
    client.cookies.clear()
    await console_owner(client, email, team_name="Own team")
    path = f"/console/invites/accept?token={invite.json()['token']}"
    form = await console_page(client, path)
    joined = await client.post("/console/invites/accept", data={
        "csrf_token": form.csrf_token(), "token": form.find("input", name="token")[0].attrs["value"]})
    assert joined.status_code == 303 and joined.headers["location"] == "/console/"
    page = await console_page(client, "/console/")
    assert page.text_of(role="status") == "You joined the team." and "Quayside" in page.text_of("header")


def test_a_form_field_posted_several_times_is_read_as_a_list():
    from typing import Any

    from litestar import Request, post
    from litestar.testing import create_test_client

    from app.console.forms import form_list

    @post("/form", status_code=200)
    async def read(request: Request[Any, Any, Any]) -> list[str]:
        return await form_list(request, "events")

    with create_test_client([read]) as test_client:
        response = test_client.post("/form", data={"events": ["email.sent", "email.bounced", ""], "other": "x"})
    assert response.json() == ["email.sent", "email.bounced"]
