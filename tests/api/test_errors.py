"""Invalid input gets a 4xx with Resend's error body, an unreachable database a 503; never a 500."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import msgspec
import pytest
from api_support import free_port
from litestar.testing import AsyncTestClient
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

from app.asgi import create_app


@pytest.mark.parametrize("body", [b"{", b"[]", b'{"name": 5}', b'{"name": ""}', b"\xff\xfe", b'{"name": "x" }' * 3])
async def test_malformed_bodies_get_422_in_resends_error_shape(client, team, body):
    response = await client.post("/domains", content=body,
                                 headers={**team.headers, "content-type": "application/json"})
    assert response.status_code == 422
    assert set(response.json()) == {"statusCode", "name", "message"} and response.json()["statusCode"] == 422


async def test_an_unknown_route_gets_404_in_the_same_shape(client):
    response = await client.get("/nope")
    assert response.status_code == 404 and response.json()["name"] == "not_found"


async def test_a_wrong_method_gets_405(client):
    response = await client.put("/domains")
    assert response.status_code == 405 and response.json()["name"] == "method_not_allowed"


async def test_a_body_over_the_size_limit_gets_413(client, team, settings):
    response = await client.post("/domains", content=b"{" + b" " * settings.max_body_bytes + b"}",
                                 headers={**team.headers, "content-type": "application/json"})
    assert response.status_code == 413 and response.json()["statusCode"] == 413


@pytest.mark.parametrize("path", ["/domains/not-a-uuid", "/domains/00000000-0000-0000-0000-000000000000"])
async def test_an_unknown_id_gets_404(client, team, path):
    response = await client.get(path, headers=team.headers)
    assert response.status_code == 404


async def test_a_malformed_authorization_header_gets_401(client):
    response = await client.get("/domains", headers={"Authorization": "Basic abc"})
    assert response.status_code == 401 and response.json()["name"] == "missing_api_key"


async def test_an_out_of_range_page_size_gets_422(client, team):
    response = await client.get("/audit-logs?limit=1000", headers=team.headers)
    assert response.status_code == 422


async def test_a_database_that_refuses_connections_gets_503_with_retry_after(settings, team):
    down = msgspec.structs.replace(settings, database_url=f"postgresql+asyncpg://postyard_app@127.0.0.1:{free_port()}/postyard")
    async with AsyncTestClient(app=create_app(down), base_url="https://testserver.local") as client:
        response = await client.get("/domains", headers=team.headers)
    assert response.status_code == 503 and response.json()["name"] == "service_unavailable"
    assert response.headers["retry-after"].isdigit()


def _own_tcp_ports() -> set[int]:
    """Local ports of this process's TCP sockets (its database connections among them)."""
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:["):-1])
    ports = set()
    for table in ("/proc/self/net/tcp", "/proc/self/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[9] in inodes:
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


async def test_connections_the_database_dropped_are_replaced_before_a_request_uses_them(client, team, postgres):
    assert (await client.get("/domains", headers=team.headers)).status_code == 200
    # What a PostgreSQL restart does to the pooled connections (this app's only: the session's
    # shared granian server keeps its own).
    ports = ",".join(str(port) for port in _own_tcp_ports())
    postgres.psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                  f"WHERE usename = 'postyard_app' AND client_port IN ({ports})")
    statuses = [(await client.get("/domains", headers=team.headers)).status_code for _ in range(3)]
    assert statuses == [200, 200, 200]  # each pooled connection is pinged on checkout (app/db/engines.py)


async def test_a_commit_that_fails_answers_503_and_stores_nothing(client, team, monkeypatch):
    address = f"kept-out-{uuid.uuid4().hex[:8]}@example.org"

    async def lost_connection(self: AsyncSession) -> None:
        raise OperationalError("COMMIT", {}, ConnectionResetError("connection lost"))

    monkeypatch.setattr(AsyncSession, "commit", lost_connection)
    response = await client.post("/suppressions", json={"email": address}, headers=team.headers)
    monkeypatch.undo()
    assert response.status_code == 503 and response.headers["retry-after"] == "5"
    assert response.json() == {"statusCode": 503, "name": "service_unavailable",
                               "message": "The change could not be stored; try again"}
    assert (await client.get(f"/suppressions/{address}", headers=team.headers)).status_code == 404
