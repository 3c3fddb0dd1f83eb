"""A forgotten password in the console: a single-use link sent from the system sender as the team holding its
domain, the same answer for every address, throttling, and the new password replacing the old everywhere."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator

import msgspec
import pytest
from conftest import TeamKey, as_operator_cli
from console_pages import HOST, PASSWORD, SESSION_COOKIE, Page, console_owner, new_email
from litestar.testing import AsyncTestClient
from sqlalchemy import text

from app.asgi import create_app
from app.config import Settings
from app.lib.hashing import sha256

NEW_PASSWORD = "a brand new passphrase"
LINK = re.compile(rf"https://{re.escape(HOST)}/console/password-reset/confirm\?token=([A-Za-z0-9_-]+)")


@pytest.fixture(autouse=True)
def _fresh_windows(fresh_redis) -> None:
    """Each test starts with empty rate-limit windows (they all ask from the same address)."""


@pytest.fixture
def system_sender(sender: str) -> str:
    return f"Postyard <no-reply@{sender}>"


@pytest.fixture
async def rc(settings: Settings, system_sender: str) -> AsyncIterator[AsyncTestClient]:
    """The console of an instance whose system sender is a verified domain of `team`."""
    app = create_app(msgspec.structs.replace(settings, system_sender=system_sender))
    async with AsyncTestClient(app=app, base_url=f"https://{HOST}") as c:
        c.follow_redirects = False
        yield c


async def _db(settings: Settings, sql: str, **params) -> list:
    return (await as_operator_cli(settings, lambda db: db.execute(text(sql), params))).all()


async def _exec(settings: Settings, sql: str, **params) -> None:
    await as_operator_cli(settings, lambda db: db.execute(text(sql), params))


async def _system_mail(settings: Settings, system_sender: str) -> list:
    return await _db(settings, "SELECT team_id, from_address, to_addresses, subject, text_body, state, tags "
                               "FROM emails WHERE from_address = :f ORDER BY created_at", f=system_sender)


async def _ask(client, email: str, headers: dict[str, str] | None = None):
    return await client.post("/console/password-reset", data={"email": email}, headers=headers or {})


async def _account(client) -> str:
    """A new account (its own team, signed in on `client`); returns its address."""
    email = new_email()
    await console_owner(client, email)
    return email


async def _link_for(client, settings: Settings, system_sender: str, email: str) -> str:
    """Ask for a reset of `email` and return the token of the link the email carries."""
    assert (await _ask(client, email)).status_code == 303
    bodies = [row.text_body for row in await _system_mail(settings, system_sender) if row.to_addresses == [email]]
    assert len(bodies) == 1
    return LINK.search(bodies[0]).group(1)


async def _sign_in(client, email: str, password: str) -> int:
    client.cookies.clear()
    return (await client.post("/console/login", data={"email": email, "password": password})).status_code


async def _set(client, token: str, password: str = NEW_PASSWORD, headers: dict[str, str] | None = None):
    return await client.post("/console/password-reset/confirm", data={"token": token, "new_password": password},
                             headers=headers or {})


async def test_the_sign_in_page_links_to_password_reset(client):
    page = Page((await client.get("/console/login")).text)
    assert [a.attrs["href"] for a in page.find("a") if "Forgot your password?" in "".join(a.children_text)] == [
        "/console/password-reset"]


async def test_an_unknown_address_gets_the_same_answer_and_no_email(rc, settings, system_sender):
    known = await _account(rc)
    rc.cookies.clear()
    answers = [await _ask(rc, address) for address in (new_email(), known)]
    assert [(r.status_code, r.headers["location"]) for r in answers] == [(303, "/console/password-reset?m=sent")] * 2
    page = Page((await rc.get("/console/password-reset?m=sent")).text)
    assert "If an account exists for that address, we sent it a link" in page.text
    assert not page.find("form", action="/console/password-reset")
    assert [row.to_addresses for row in await _system_mail(settings, system_sender)] == [[known]]


async def test_a_known_address_gets_one_queued_email_from_the_system_sender(rc, settings, system_sender,
                                                                            team: TeamKey):
    email = await _account(rc)
    assert (await _ask(rc, email.upper())).status_code == 303
    [mail] = await _system_mail(settings, system_sender)
    assert (mail.team_id, mail.to_addresses, mail.state) == (team.team_id, [email], "queued")
    assert mail.subject == "Reset your Postyard password" and mail.tags == [{"name": "postyard",
                                                                             "value": "password-reset"}]
    token = LINK.search(mail.text_body).group(1)
    [row] = await _db(settings, "SELECT user_id, expires_at - created_at AS ttl, used_at FROM password_resets "
                                "WHERE token_hash = :h", h=sha256(token))
    assert row.ttl.total_seconds() == 1800 and row.used_at is None
    assert token not in str(await _db(settings, "SELECT token_hash FROM password_resets"))  # only its hash
    # A normal email of the sender's team: its activity log lists it.
    listed = await rc.get("/emails", headers=team.headers)
    assert email in str(listed.json()["data"][0]["to"])


async def test_the_link_sets_the_password_once_and_signs_every_session_out(rc, settings, system_sender):
    email = await _account(rc)
    other_session = rc.cookies[SESSION_COOKIE]
    token = await _link_for(rc, settings, system_sender, email)
    form = Page((await rc.get(f"/console/password-reset/confirm?token={token}")).text)
    assert form.find("input", name="token")[0].attrs["value"] == token
    assert form.find("label", **{"for": "new_password"})

    done = await _set(rc, token)
    assert done.status_code == 303 and done.headers["location"] == "/console/login?m=password-reset"
    assert "every session is signed out" in Page((await rc.get("/console/login?m=password-reset")).text).text
    rc.cookies.clear()
    rc.cookies[SESSION_COOKIE] = other_session
    assert (await rc.get("/console/")).status_code == 303  # the session from before is revoked
    assert await _sign_in(rc, email, PASSWORD) == 401
    assert await _sign_in(rc, email, NEW_PASSWORD) == 303

    again = await _set(rc, token, "yet another passphrase")
    assert again.status_code == 410
    assert Page(again.text).text_of(role="alert") == "This reset link was already used; ask for a new one"
    assert (await rc.get(f"/console/password-reset/confirm?token={token}")).status_code == 410
    assert await _sign_in(rc, email, NEW_PASSWORD) == 303
    actions = [r.action for r in await _db(settings, "SELECT a.action FROM audit_logs a JOIN users u "
                                                     "ON a.resource_id = u.id::text WHERE u.email = :e "
                                                     "ORDER BY a.created_at", e=email)]
    assert "user.password_reset_requested" in actions and "user.password_reset" in actions


async def test_of_two_concurrent_uses_one_sets_the_password_and_other_links_are_used_up(rc, settings, system_sender):
    email = await _account(rc)
    first = await _link_for(rc, settings, system_sender, email)
    assert (await _ask(rc, email)).status_code == 303
    bodies = [row.text_body for row in await _system_mail(settings, system_sender)]
    second = LINK.search(bodies[-1]).group(1)
    answers = await asyncio.gather(_set(rc, first, "concurrent passphrase one"),
                                   _set(rc, first, "concurrent passphrase two"))
    assert sorted(a.status_code for a in answers) == [303, 410]
    winner = "concurrent passphrase one" if answers[0].status_code == 303 else "concurrent passphrase two"
    assert await _sign_in(rc, email, winner) == 303
    assert (await _set(rc, second)).status_code == 410  # the account's other open link went with it


async def test_a_link_expires_after_30_minutes(rc, settings, system_sender):
    email = await _account(rc)
    token = await _link_for(rc, settings, system_sender, email)
    await _exec(settings, "UPDATE password_resets SET created_at = created_at - interval '31 minutes', "
                          "expires_at = expires_at - interval '31 minutes' WHERE token_hash = :h", h=sha256(token))
    page = await rc.get(f"/console/password-reset/confirm?token={token}")
    assert page.status_code == 410 and "This reset link has expired" in Page(page.text).text
    assert not Page(page.text).find("input", name="new_password")
    assert (await _set(rc, token)).status_code == 410
    assert await _sign_in(rc, email, PASSWORD) == 303


async def test_a_short_password_or_an_unknown_token_is_refused_and_the_link_still_works(rc, settings, system_sender):
    email = await _account(rc)
    token = await _link_for(rc, settings, system_sender, email)
    short = await _set(rc, token, "short")
    assert short.status_code == 422 and Page(short.text).find("input", name="token")[0].attrs["value"] == token
    unknown = await _set(rc, "not-a-token")
    assert unknown.status_code == 410 and "not valid" in Page(unknown.text).text_of(role="alert")
    assert (await _set(rc, token)).status_code == 303


async def test_without_a_system_sender_the_page_says_reset_is_off(client, settings, system_sender):
    email = await _account(client)
    client.cookies.clear()
    page = Page((await client.get("/console/password-reset")).text)
    assert "Password reset by email is off on this instance" in page.text
    assert not page.find("input", name="email")
    refused = await _ask(client, email)
    assert refused.status_code == 404 and "off on this instance" in Page(refused.text).text_of(role="alert")
    assert await _system_mail(settings, system_sender) == []


async def test_a_sender_domain_no_team_holds_verified_sends_nothing_and_answers_the_same(rc, settings,
                                                                                       system_sender, sender):
    email = await _account(rc)
    await _exec(settings, "UPDATE domains SET status = 'failed' WHERE name = :n", n=sender)
    answer = await _ask(rc, email)
    assert (answer.status_code, answer.headers["location"]) == (303, "/console/password-reset?m=sent")
    assert await _system_mail(settings, system_sender) == []


async def test_requests_are_throttled_per_address_and_per_ip(rc, settings, system_sender):
    email = await _account(rc)
    answers = [(await _ask(rc, email)).status_code for _ in range(settings.login_max_failures_account + 1)]
    assert answers == [303] * settings.login_max_failures_account + [429]
    assert len(await _system_mail(settings, system_sender)) == settings.login_max_failures_account
    unknown = new_email()
    answers = [(await _ask(rc, unknown)).status_code for _ in range(settings.login_max_failures_account + 1)]
    assert answers[-1] == 429  # the same for an address without an account
    others = [(await _ask(rc, new_email())).status_code for _ in range(settings.login_max_failures_ip)]
    assert others[-1] == 429 and "Too many reset requests" in Page((await _ask(rc, new_email())).text).text


async def test_a_request_naming_a_host_the_console_is_not_served_under_is_refused(settings, system_sender):
    only = msgspec.structs.replace(settings, system_sender=system_sender, console_hosts=f"api.example.test, {HOST}")
    async with AsyncTestClient(app=create_app(only), base_url=f"https://{HOST}") as c:
        c.follow_redirects = False
        email = await _account(c)
        forged = await _ask(c, email, headers={"host": "evil.example"})
        assert forged.status_code == 400
        assert Page(forged.text).text_of(role="alert") == "The console is not served under this host name"
        assert await _system_mail(settings, system_sender) == []
        assert (await _ask(c, email)).status_code == 303
        assert len(await _system_mail(settings, system_sender)) == 1


async def test_cross_site_forms_are_refused(rc, settings, system_sender):
    email = await _account(rc)
    cross = {"origin": "https://evil.example", "sec-fetch-site": "cross-site"}
    refused = await _ask(rc, email, headers=cross)
    assert refused.status_code == 403 and "another site" in refused.text
    assert await _system_mail(settings, system_sender) == []
    token = await _link_for(rc, settings, system_sender, email)
    assert (await _set(rc, token, headers=cross)).status_code == 403
    assert await _sign_in(rc, email, PASSWORD) == 303
    assert (await _set(rc, token)).status_code == 303
