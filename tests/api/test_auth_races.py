"""Authentication under concurrency: throttling counts before it checks, codes are used once, per-IP budgets."""

from __future__ import annotations

import asyncio
import secrets
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import httpx
import msgspec
import pyotp
import pytest
from litestar import Litestar

from app.asgi import create_app
from app.config import Settings

PASSWORD = "correct horse battery staple"
WRONG = "not the password at all"


def _email() -> str:
    return f"r{uuid.uuid4().hex[:10]}@example.test"


def _ip() -> str:
    """A client address of its own for each test, so no test shares another's per-address windows."""
    return f"10.{secrets.randbelow(256)}.{secrets.randbelow(256)}.{secrets.randbelow(254) + 1}"


@asynccontextmanager
async def _running(settings: Settings, **overrides: Any) -> AsyncIterator[Litestar]:
    """The app with the suite's settings and `overrides`; open sign-up makes the accounts these tests attack."""
    app = create_app(msgspec.structs.replace(settings, **{"signup": "open", **overrides}))
    async with app.lifespan():
        yield app


def _client(app: Litestar, ip: str) -> httpx.AsyncClient:
    """A client with its own cookie jar; requests of several clients run concurrently in this event loop."""
    transport = httpx.ASGITransport(app=app, client=(ip, 50000))
    return httpx.AsyncClient(transport=transport, base_url="https://testserver.local")


async def _register(client: httpx.AsyncClient, email: str) -> dict:
    response = await client.post("/auth/register", json={"email": email, "password": PASSWORD, "team_name": "R"})
    assert response.status_code == 201, response.text
    return response.json()


async def _with_totp(client: httpx.AsyncClient, email: str) -> tuple[pyotp.TOTP, str, list[str]]:
    """Register `email` and turn 2FA on with the current code (its time step is then spent)."""
    csrf = {"x-csrf-token": (await _register(client, email))["csrf_token"]}
    totp = pyotp.TOTP((await client.post("/auth/2fa/setup", headers=csrf)).json()["secret"])
    code = totp.now()
    enabled = await client.post("/auth/2fa/enable", json={"code": code}, headers=csrf)
    assert enabled.status_code == 200, enabled.text
    return totp, code, enabled.json()["backup_codes"]


async def _pending(client: httpx.AsyncClient, email: str) -> httpx.AsyncClient:
    """Log the client in with the password; its session then waits for the second factor."""
    response = await client.post("/auth/login", json={"email": email, "password": PASSWORD})
    assert response.status_code == 200 and response.json()["mfa_required"] is True, response.text
    return client


def _next_code(totp: pyotp.TOTP) -> str:
    """The next time step's code: accepted (clock skew) and not yet spent."""
    return totp.at(time.time() + totp.interval)



async def _concurrently(count: int, request: Any) -> Counter[int]:
    """Send `count` requests at once; how many got each status."""
    return Counter(r.status_code for r in await asyncio.gather(*(request() for _ in range(count))))


async def test_thirty_concurrent_wrong_passwords_leave_the_account_throttled(settings):
    limit = settings.login_max_failures_account
    # The address budget is out of the way: only the account's window decides.
    async with _running(settings, login_max_failures_ip=1000) as app, _client(app, _ip()) as client:
        email = _email()
        await _register(client, email)
        client.cookies.clear()
        responses = await asyncio.gather(*(client.post("/auth/login", json={"email": email, "password": WRONG})
                                           for _ in range(30)))
        right = await client.post("/auth/login", json={"email": email, "password": PASSWORD})
    assert Counter(r.status_code for r in responses) == {401: limit, 429: 30 - limit}
    assert all(int(r.headers["retry-after"]) > 0 for r in responses if r.status_code == 429)
    assert right.status_code == 429 and int(right.headers["retry-after"]) > 0


async def test_thirty_concurrent_wrong_passwords_over_many_accounts_check_at_most_the_address_budget(settings):
    limit = settings.login_max_failures_ip
    async with _running(settings) as app, _client(app, _ip()) as client:
        statuses = await _concurrently(30, lambda: client.post("/auth/login",
                                                                json={"email": _email(), "password": WRONG}))
    assert statuses == {401: limit, 429: 30 - limit}


async def test_with_redis_down_thirty_concurrent_wrong_passwords_still_check_only_the_limit(settings):
    limit = settings.login_max_failures_account
    async with _running(settings, redis_url="redis://127.0.0.1:1/0", login_max_failures_ip=1000) as app, \
            _client(app, _ip()) as client:
        email = _email()
        await _register(client, email)
        statuses = await _concurrently(30, lambda: client.post("/auth/login",
                                                                json={"email": email, "password": WRONG}))
    assert statuses == {401: limit, 429: 30 - limit}


async def test_a_successful_login_gives_back_its_own_slot_but_forgets_no_failure(settings):
    limit = settings.login_max_failures_account
    right, wrong = {"password": PASSWORD}, {"password": WRONG}
    async with _running(settings) as app, _client(app, _ip()) as client:
        email = _email()
        await _register(client, email)

        async def login(body: dict) -> int:
            return (await client.post("/auth/login", json={"email": email, **body})).status_code

        successes = [await login(right) for _ in range(limit + 3)]
        failures = [await login(wrong) for _ in range(limit - 1)]
        after = [await login(right), await login(wrong), await login(right)]
    assert successes == [200] * (limit + 3)
    assert failures == [401] * (limit - 1)
    assert after == [200, 401, 429]


async def test_a_totp_code_is_accepted_once(settings):
    ip, email = _ip(), _email()
    statuses = []
    async with _running(settings) as app:
        async with _client(app, ip) as owner:
            totp, _, _ = await _with_totp(owner, email)
        code = _next_code(totp)
        for _ in range(2):
            async with _client(app, ip) as client:
                await _pending(client, email)
                statuses.append((await client.post("/auth/login/totp", json={"code": code})).status_code)
    assert statuses == [200, 401]


async def test_the_code_that_turned_2fa_on_cannot_log_in(settings):
    ip, email = _ip(), _email()
    async with _running(settings) as app:
        async with _client(app, ip) as owner:
            _, spent, _ = await _with_totp(owner, email)
        async with _client(app, ip) as client:
            await _pending(client, email)
            replayed = await client.post("/auth/login/totp", json={"code": spent})
    assert replayed.status_code == 401


async def test_one_totp_code_in_ten_parallel_logins_is_accepted_once(settings):
    ip, email = _ip(), _email()
    async with _running(settings, login_max_failures_account=100, login_max_failures_ip=1000) as app, \
            AsyncExitStack() as stack:
        async with _client(app, ip) as owner:
            totp, _, _ = await _with_totp(owner, email)
        clients = [await _pending(await stack.enter_async_context(_client(app, ip)), email) for _ in range(10)]
        code = _next_code(totp)
        responses = await asyncio.gather(*(c.post("/auth/login/totp", json={"code": code}) for c in clients))
    assert Counter(r.status_code for r in responses) == {200: 1, 401: 9}


@pytest.mark.parametrize("parallel", [2, 10])
async def test_one_backup_code_in_parallel_logins_is_accepted_once(settings, parallel):
    ip, email = _ip(), _email()
    async with _running(settings, login_max_failures_account=100, login_max_failures_ip=1000) as app, \
            AsyncExitStack() as stack:
        async with _client(app, ip) as owner:
            _, _, backup_codes = await _with_totp(owner, email)
        clients = [await _pending(await stack.enter_async_context(_client(app, ip)), email) for _ in range(parallel)]
        responses = await asyncio.gather(*(c.post("/auth/login/totp", json={"code": backup_codes[0]})
                                           for c in clients))
    assert Counter(r.status_code for r in responses) == {200: 1, 401: parallel - 1}


async def test_wrong_current_passwords_on_password_change_are_counted_and_throttled(settings):
    limit = settings.login_max_failures_account
    async with _running(settings) as app, _client(app, _ip()) as client:
        email = _email()
        csrf = {"x-csrf-token": (await _register(client, email))["csrf_token"]}
        change = {"current_password": WRONG, "new_password": PASSWORD + "!"}
        statuses = await _concurrently(limit + 5, lambda: client.post("/auth/password", json=change, headers=csrf))
        right = {"current_password": PASSWORD, "new_password": PASSWORD + "!"}
        with_right = await client.post("/auth/password", json=right, headers=csrf)
        client.cookies.clear()
        login = await client.post("/auth/login", json={"email": email, "password": PASSWORD})
    assert statuses == {403: limit, 429: 5}
    assert with_right.status_code == 429 and login.status_code == 429


async def test_wrong_passwords_on_2fa_disable_are_counted_and_throttled(settings):
    limit = settings.login_max_failures_account
    async with _running(settings) as app, _client(app, _ip()) as client:
        await _with_totp(client, _email())
        csrf = {"x-csrf-token": (await client.get("/auth/me")).json()["csrf_token"]}
        statuses = [(await client.post("/auth/2fa/disable", json={"password": WRONG}, headers=csrf)).status_code
                    for _ in range(limit + 1)]
        with_right = await client.post("/auth/2fa/disable", json={"password": PASSWORD}, headers=csrf)
    assert statuses == [403] * limit + [429]
    assert with_right.status_code == 429


async def test_wrong_codes_on_2fa_enable_are_counted_and_throttled(settings):
    limit = settings.login_max_failures_account
    async with _running(settings) as app, _client(app, _ip()) as client:
        csrf = {"x-csrf-token": (await _register(client, _email()))["csrf_token"]}
        await client.post("/auth/2fa/setup", headers=csrf)
        statuses = [(await client.post("/auth/2fa/enable", json={"code": "12345x"}, headers=csrf)).status_code
                    for _ in range(limit + 1)]
    assert statuses == [422] * limit + [429]


async def test_wrong_second_factors_are_counted_against_the_account(settings):
    limit = settings.login_max_failures_account
    ip, email = _ip(), _email()
    async with _running(settings) as app:
        async with _client(app, ip) as owner:
            await _with_totp(owner, email)
        async with _client(app, ip) as client:
            await _pending(client, email)
            statuses = [(await client.post("/auth/login/totp", json={"code": "00000x"})).status_code
                        for _ in range(limit + 1)]
    assert statuses == [401] * limit + [429]


async def test_login_beyond_the_address_budget_answers_429_with_retry_after(settings):
    ip = _ip()
    async with _running(settings, anonymous_rate_limit=3) as app:
        async with _client(app, ip) as client:
            logins = [await client.post("/auth/login", json={"email": _email(), "password": WRONG}) for _ in range(4)]
            second_factor = await client.post("/auth/login/totp", json={"code": "123456"})
        async with _client(app, _ip()) as elsewhere:
            other = await elsewhere.post("/auth/login", json={"email": _email(), "password": WRONG})
    assert [r.status_code for r in logins] == [401, 401, 401, 429]
    assert 0 < int(logins[-1].headers["retry-after"]) <= settings.rate_limit_window
    # /auth/login/totp has a budget of its own: refused because no login waits, not for the address.
    assert second_factor.status_code == 401
    assert other.status_code == 401


async def test_addresses_of_one_ipv6_slash64_share_one_budget(settings):
    prefix = f"2001:db8:{secrets.randbelow(65536):x}:{secrets.randbelow(65536):x}"
    statuses = []
    async with _running(settings, anonymous_rate_limit=2) as app:
        for host in ("::1", "::2", "::3"):
            async with _client(app, prefix + host) as client:
                response = await client.post("/auth/login", json={"email": _email(), "password": WRONG})
                statuses.append(response.status_code)
    assert statuses == [401, 401, 429]
