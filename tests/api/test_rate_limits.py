"""Sliding-window rate limits per team and per key, and what happens when Redis is down."""

from __future__ import annotations

import uuid

import msgspec
import pytest
from conftest import sign_up
from litestar.testing import AsyncTestClient

from app.asgi import create_app


async def test_responses_carry_ratelimit_headers(client, team):
    response = await client.get("/domains", headers=team.headers)
    assert {"ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"} <= set(response.headers)


async def test_a_team_over_its_limit_gets_429_with_retry_after(client, team):
    await client.patch("/team", json={"rate_limit": 4}, headers=team.headers)  # this request counts too
    statuses = [(await client.get("/domains", headers=team.headers)) for _ in range(4)]
    refused = statuses[-1]
    assert [r.status_code for r in statuses[:3]] == [200, 200, 200]
    assert refused.status_code == 429 and refused.json()["name"] == "rate_limit_exceeded"
    assert int(refused.headers["retry-after"]) >= 1 and refused.headers["ratelimit-remaining"] == "0"


async def test_each_api_key_has_its_own_limit(client, team):
    await client.patch("/team", json={"api_key_rate_limit": 2}, headers=team.headers)
    other = (await client.post("/api-keys", json={"name": "second"}, headers=team.headers)).json()["token"]
    first_key = [(await client.get("/domains", headers=team.headers)).status_code for _ in range(2)]
    second_key = (await client.get("/domains", headers={"Authorization": f"Bearer {other}"})).status_code
    assert first_key[-1] == 429 and second_key == 200


async def test_limits_are_configurable_per_team(client, team, other_team):
    await client.patch("/team", json={"rate_limit": 1}, headers=team.headers)
    ours = (await client.get("/domains", headers=team.headers)).status_code
    theirs = (await client.get("/domains", headers=other_team.headers)).status_code
    assert ours == 429 and theirs == 200


@pytest.fixture
async def redis_down_client(settings):
    """The app configured with a Redis nobody listens on."""
    broken = msgspec.structs.replace(settings, redis_url="redis://127.0.0.1:1/0")
    async with AsyncTestClient(app=create_app(broken), base_url="https://testserver.local") as c:
        yield c


async def test_with_redis_down_requests_succeed_and_are_still_limited_in_process(redis_down_client, team):
    await redis_down_client.patch("/team", json={"rate_limit": 3}, headers=team.headers)
    statuses = [(await redis_down_client.get("/domains", headers=team.headers)).status_code for _ in range(4)]
    assert statuses == [200, 200, 429, 429]


async def test_with_redis_down_login_throttling_still_applies(redis_down_client):
    email = f"r{uuid.uuid4().hex[:8]}@example.test"
    await sign_up(redis_down_client, email, "p" * 12)
    statuses = [(await redis_down_client.post("/auth/login", json={"email": email, "password": "wrong"})).status_code
                for _ in range(6)]
    assert statuses == [401] * 5 + [429]


async def test_with_redis_down_health_answers_200_degraded_not_503(redis_down_client):
    response = await redis_down_client.get("/health")
    assert response.status_code == 200 and response.json()["degraded"] == ["redis"]
