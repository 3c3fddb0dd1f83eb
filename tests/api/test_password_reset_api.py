"""Password reset through the API: `POST /auth/password-reset` answers 202 whether or not the address has an
account and emails a link only to one that has; `POST /auth/password-reset/confirm` sets the password once and
signs every session out; the console's throttling windows, host check and messages apply."""

from __future__ import annotations

from collections.abc import AsyncIterator

import msgspec
import pytest
from console_pages import HOST, PASSWORD, SESSION_COOKIE, new_email
from litestar.testing import AsyncTestClient
from test_console_password_reset import LINK, NEW_PASSWORD, _account, _ask, _db, _exec, _system_mail

from app.asgi import create_app
from app.config import Settings
from app.lib.hashing import sha256

REQUEST = "/auth/password-reset"
CONFIRM = "/auth/password-reset/confirm"


@pytest.fixture(autouse=True)
def _fresh_windows(fresh_redis) -> None:
    """Each test starts with empty rate-limit windows (they all ask from the same address)."""


@pytest.fixture
def system_sender(sender: str) -> str:
    return f"Postyard <no-reply@{sender}>"


@pytest.fixture
async def rc(settings: Settings, system_sender: str) -> AsyncIterator[AsyncTestClient]:
    """The API of an instance whose system sender is a verified domain of `team`."""
    app = create_app(msgspec.structs.replace(settings, system_sender=system_sender))
    async with AsyncTestClient(app=app, base_url=f"https://{HOST}") as c:
        c.follow_redirects = False
        yield c


async def _request(client, email: str, headers: dict[str, str] | None = None):
    return await client.post(REQUEST, json={"email": email}, headers=headers or {})


async def _confirm(client, token: str, password: str = NEW_PASSWORD):
    return await client.post(CONFIRM, json={"token": token, "new_password": password})


async def _token(client, settings, system_sender: str, email: str) -> str:
    """Ask the API for a reset of `email`; the token of the one link emailed to it."""
    assert (await _request(client, email)).status_code == 202
    bodies = [row.text_body for row in await _system_mail(settings, system_sender) if row.to_addresses == [email]]
    assert len(bodies) == 1
    return LINK.search(bodies[0]).group(1)


async def _login(client, email: str, password: str) -> int:
    client.cookies.clear()
    return (await client.post("/auth/login", json={"email": email, "password": password})).status_code


async def test_a_known_and_an_unknown_address_get_the_same_202_and_only_the_known_an_email(rc, settings,
                                                                                          system_sender):
    known = await _account(rc)
    rc.cookies.clear()
    answers = [await _request(rc, address) for address in (new_email(), known.upper())]
    assert [(a.status_code, a.json(), a.headers.get("set-cookie")) for a in answers] == [
        (202, {"message": "If an account exists for that address, we sent it a link", "object": "password_reset"},
         None)] * 2
    mails = await _system_mail(settings, system_sender)
    assert [m.to_addresses for m in mails] == [[known]]
    # The link opens the console's form on the host the request named.
    token = LINK.search(mails[0].text_body).group(1)
    assert (await rc.get(f"/console/password-reset/confirm?token={token}")).status_code == 200


async def test_the_token_sets_the_password_once_and_signs_every_session_out(rc, settings, system_sender):
    email = await _account(rc)
    before = rc.cookies[SESSION_COOKIE]
    token = await _token(rc, settings, system_sender, email)
    done = await _confirm(rc, token)
    assert done.status_code == 204 and not done.content
    cleared = done.headers["set-cookie"]  # this client's cookie is cleared; no session is opened
    assert cleared.startswith(f"{SESSION_COOKIE}=") and "Max-Age=0" in cleared
    rc.cookies.clear()
    rc.cookies[SESSION_COOKIE] = before
    assert (await rc.get("/auth/me")).status_code == 401  # the session from before is revoked
    assert await _login(rc, email, PASSWORD) == 401
    assert await _login(rc, email, NEW_PASSWORD) == 200
    again = await _confirm(rc, token, "yet another passphrase")
    assert again.status_code == 410
    assert again.json() == {"statusCode": 410, "name": "invalid_reset_link",
                            "message": "This reset link was already used; ask for a new one"}
    assert await _login(rc, email, NEW_PASSWORD) == 200
    actions = [r.action for r in await _db(settings, "SELECT a.action FROM audit_logs a JOIN users u "
                                                     "ON a.resource_id = u.id::text WHERE u.email = :e", e=email)]
    assert {"user.password_reset_requested", "user.password_reset"} <= set(actions)


async def test_a_short_password_or_an_unknown_token_is_refused_and_the_link_still_works(rc, settings,
                                                                                      system_sender):
    email = await _account(rc)
    token = await _token(rc, settings, system_sender, email)
    short = await _confirm(rc, token, "short")
    assert short.status_code == 422 and short.json()["message"].startswith("new_password:")
    unknown = await _confirm(rc, "not-a-token")
    assert (unknown.status_code, unknown.json()["message"]) == (410, "This reset link is not valid; ask for a new one")
    assert (await _confirm(rc, token)).status_code == 204


async def test_an_expired_token_is_refused(rc, settings, system_sender):
    email = await _account(rc)
    token = await _token(rc, settings, system_sender, email)
    await _exec(settings, "UPDATE password_resets SET created_at = created_at - interval '31 minutes', "
                          "expires_at = expires_at - interval '31 minutes' WHERE token_hash = :h", h=sha256(token))
    expired = await _confirm(rc, token)
    assert (expired.status_code, expired.json()["message"]) == (410, "This reset link has expired; ask for a new one")
    assert await _login(rc, email, PASSWORD) == 200


@pytest.mark.parametrize("body", [{}, {"email": "not an address"}, {"email": 5}, {"email": "ab"}, {"email": None}])
async def test_a_malformed_request_is_refused_and_sends_nothing(rc, settings, system_sender, body):
    refused = await rc.post(REQUEST, json=body)
    assert refused.status_code == 422 and refused.json()["name"] == "validation_error"
    assert await _system_mail(settings, system_sender) == []


async def test_the_api_and_the_console_count_against_the_same_windows(rc, settings, system_sender):
    email = await _account(rc)
    limit = settings.login_max_failures_account
    half = limit // 2
    console = [(await _ask(rc, email)).status_code for _ in range(half)]
    api = [(await _request(rc, email)).status_code for _ in range(limit - half + 1)]
    assert console == [303] * half and api == [202] * (limit - half) + [429]
    assert api and (await _request(rc, email)).json()["message"] == "Too many reset requests; try again later"
    assert len(await _system_mail(settings, system_sender)) == limit
    unknown = new_email()
    answers = [(await _request(rc, unknown)).status_code for _ in range(limit + 1)]
    assert answers[-1] == 429  # the same for an address without an account


async def test_without_a_system_sender_reset_is_off(client, settings, system_sender):
    email = await _account(client)
    client.cookies.clear()
    refused = await _request(client, email)
    assert refused.status_code == 404
    assert refused.json() == {"statusCode": 404, "name": "password_reset_off",
                              "message": "Password reset by email is off on this instance"}
    assert await _system_mail(settings, system_sender) == []


async def test_a_request_naming_a_host_the_console_is_not_served_under_is_refused(settings, system_sender):
    only = msgspec.structs.replace(settings, system_sender=system_sender, console_hosts=f"api.example.test, {HOST}")
    async with AsyncTestClient(app=create_app(only), base_url=f"https://{HOST}") as c:
        email = await _account(c)
        forged = await _request(c, email, headers={"host": "evil.example"})
        assert forged.status_code == 422  # the API answers 422 where the console answers 400
        assert forged.json()["message"] == "The console is not served under this host name"
        assert await _system_mail(settings, system_sender) == []
        assert (await _request(c, email)).status_code == 202
        assert len(await _system_mail(settings, system_sender)) == 1


async def test_the_openapi_document_states_both_routes_public_with_their_answers(client):
    paths = (await client.get("/docs/openapi.json")).json()["paths"]
    asked, confirmed = paths[REQUEST]["post"], paths[CONFIRM]["post"]
    assert asked["security"] == confirmed["security"] == []
    assert {"202", "404", "422", "429", "503"} <= set(asked["responses"]) and "410" not in asked["responses"]
    assert {"204", "410", "422", "429", "503"} <= set(confirmed["responses"]) and "404" not in confirmed["responses"]
    assert confirmed["responses"]["410"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ErrorBody"}
