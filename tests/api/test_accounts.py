"""Registration, login, sessions, CSRF, TOTP 2FA, password change and login throttling."""

from __future__ import annotations

import hashlib
import time
import uuid

import pyotp
from conftest import sign_up

PASSWORD = "correct horse battery staple"


def _email() -> str:
    return f"u{uuid.uuid4().hex[:10]}@example.test"


async def _register(client, email: str | None = None) -> dict:
    response = await sign_up(client, email or _email(), PASSWORD)
    assert response.status_code == 201, response.text
    return response.json()


async def test_registration_sets_an_httponly_secure_samesite_cookie_for_24_hours(client):
    response = await sign_up(client, _email(), PASSWORD)
    cookie = response.headers["set-cookie"].lower()
    assert response.status_code == 201
    assert "httponly" in cookie and "secure" in cookie and "samesite=strict" in cookie
    assert "max-age=86400" in cookie


async def test_registration_makes_the_user_owner_of_a_new_team(client):
    info = await _register(client)
    me = await client.get("/auth/me")
    assert me.json()["role"] == "owner" and me.json()["team_id"] == info["team_id"]


async def test_registration_refuses_a_short_password_with_a_validation_error(client):
    response = await sign_up(client, _email(), "short")
    assert response.status_code == 422 and response.json()["name"] == "validation_error"


async def test_state_changing_session_request_without_csrf_token_is_refused(client):
    await _register(client)
    response = await client.post("/api-keys", json={"name": "k"})
    assert response.status_code == 403 and response.json()["name"] == "csrf_failed"


async def test_state_changing_session_request_with_csrf_token_succeeds(client):
    info = await _register(client)
    response = await client.post("/api-keys", json={"name": "k"}, headers={"x-csrf-token": info["csrf_token"]})
    assert response.status_code == 201


async def test_login_with_a_wrong_password_is_refused(client):
    email = _email()
    await _register(client, email)
    client.cookies.clear()
    response = await client.post("/auth/login", json={"email": email, "password": "wrong password!"})
    assert response.status_code == 401 and response.json()["name"] == "invalid_credentials"


async def test_repeated_failed_logins_are_throttled_per_account(client):
    email = _email()
    await _register(client, email)
    statuses = [(await client.post("/auth/login", json={"email": email, "password": "nope"})).status_code
                for _ in range(6)]
    refused = await client.post("/auth/login", json={"email": email, "password": PASSWORD})
    assert statuses[:5] == [401] * 5
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 0


async def test_repeated_failed_logins_are_throttled_per_ip_across_accounts(client, settings, fresh_redis):
    statuses = [(await client.post("/auth/login", json={"email": _email(), "password": "nope"},
                                   )).status_code
                for _ in range(settings.login_max_failures_ip + 1)]
    assert 429 in statuses


async def test_password_change_revokes_every_session(client, settings):
    email = _email()
    info = await _register(client, email)
    old_cookie = client.cookies.get("postyard_session")
    response = await client.post("/auth/password", json={"current_password": PASSWORD, "new_password": PASSWORD + "2"},
                                 headers={"x-csrf-token": info["csrf_token"]})
    client.cookies.set("postyard_session", old_cookie, domain="testserver.local")
    assert response.status_code == 204
    assert (await client.get("/auth/me")).status_code == 401


async def test_logout_ends_the_session(client):
    info = await _register(client)
    cookie = client.cookies.get("postyard_session")
    await client.post("/auth/logout", headers={"x-csrf-token": info["csrf_token"]})
    client.cookies.set("postyard_session", cookie, domain="testserver.local")
    assert (await client.get("/auth/me")).status_code == 401


async def _enable_totp(client, info: dict) -> tuple[str, list[str]]:
    csrf = {"x-csrf-token": info["csrf_token"]}
    setup = (await client.post("/auth/2fa/setup", headers=csrf)).json()
    enabled = await client.post("/auth/2fa/enable", json={"code": pyotp.TOTP(setup["secret"]).now()}, headers=csrf)
    assert enabled.status_code == 200, enabled.text
    return setup["secret"], enabled.json()["backup_codes"]


async def test_enabling_totp_returns_ten_one_time_backup_codes(client):
    _, codes = await _enable_totp(client, await _register(client))
    assert len(codes) == 10 and len(set(codes)) == 10


async def test_login_with_totp_needs_a_current_code(client):
    email = _email()
    secret, _ = await _enable_totp(client, await _register(client, email))
    client.cookies.clear()
    first = await client.post("/auth/login", json={"email": email, "password": PASSWORD})
    assert first.json()["mfa_required"] is True
    assert (await client.get("/auth/me")).status_code == 401
    # The current step's code enabled 2FA and is spent; the next step's is still within the accepted skew.
    second = await client.post("/auth/login/totp", json={"code": pyotp.TOTP(secret).at(time.time() + 30)})
    assert second.status_code == 200 and (await client.get("/auth/me")).status_code == 200


async def test_a_backup_code_works_once(client):
    email = _email()
    _, codes = await _enable_totp(client, await _register(client, email))
    results = []
    for _ in range(2):
        client.cookies.clear()
        await client.post("/auth/login", json={"email": email, "password": PASSWORD})
        results.append((await client.post("/auth/login/totp", json={"code": codes[0]})).status_code)
    assert results == [200, 401]


async def test_backup_codes_are_stored_as_sha256(client, postgres):
    email = _email()
    _, codes = await _enable_totp(client, await _register(client, email))
    stored = postgres.psql(f"SELECT encode(code_hash, 'hex') FROM backup_codes b JOIN users u ON u.id = b.user_id "
                           f"WHERE u.email = '{email}'", user="postyard_owner", database="postyard").split()
    assert hashlib.sha256(codes[0].encode()).hexdigest() in stored and codes[0] not in stored


async def test_login_failures_and_2fa_changes_are_in_the_audit_log(client):
    email = _email()
    info = await _register(client, email)
    await _enable_totp(client, info)
    await client.post("/auth/login", json={"email": email, "password": "wrong"})
    entries = (await client.get("/audit-logs")).json()["data"]
    assert [e["action"] for e in entries] == ["login.failed", "user.2fa_enabled", "team.created"]
    assert entries[0]["ip"] and entries[0]["actor_type"] == "user"
