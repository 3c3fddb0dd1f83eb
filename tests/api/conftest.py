"""Real PostgreSQL, Redis and DNS for the API suite, the app, clients and team helpers."""

from __future__ import annotations

import asyncio
import base64
import os
import subprocess
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from api_support import ROLES, DnsServer, Postgres, Zone, free_port, granian_app, wait_for_port
from litestar.testing import AsyncTestClient
from sqlalchemy import Engine, event
from sqlalchemy.ext.asyncio import AsyncSession
from webhook_support import Receiver

from app.asgi import create_app
from app.cli import create_team
from app.config import Settings
from app.db import migrate
from app.db.roles import APP
from app.domain.operators.cli import in_owner_transaction
from app.domain.webhooks.dispatcher import Dispatcher
from app.lib.crypto import Keyring
from postyard.local_stack.smtp_sink import Sink, SinkServer

T = TypeVar("T")
DATA_KEY = os.urandom(32)
DATA_KEY_ID = "k2026"
PUBLIC_URL = "https://testserver.local"  # where the in-process client reaches the app, and the links it hands out


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    """PostgreSQL 15 with the owner, app and mail roles, migrated as the owner."""
    root = Path(tempfile.mkdtemp(prefix="postyard-pg-"))
    os.chmod(root, 0o755)
    pg = Postgres(root=root, port=free_port())
    pg.start()
    try:
        pg.psql("".join(f"CREATE ROLE {r} LOGIN;" for r in ROLES))
        pg.psql("CREATE DATABASE postyard OWNER postyard_owner;")
        pg.psql("REVOKE ALL ON DATABASE postyard FROM PUBLIC;"
                + "".join(f"GRANT CONNECT ON DATABASE postyard TO {r};" for r in ROLES))
        migrate.upgrade(pg.url("postyard_owner"))
        yield pg
    finally:
        pg.stop()
        subprocess.run(["rm", "-rf", str(root)], check=False)


@pytest.fixture(scope="session")
def redis_port() -> Iterator[int]:
    """redis-server on a loopback port, without persistence."""
    port = free_port()
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--protected-mode", "yes"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port)
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture
def fresh_redis(redis_port: int) -> Iterator[None]:
    """Forget every rate-limit window after the test (limits are shared by all tests otherwise)."""
    yield
    import redis

    redis.Redis(port=redis_port).flushdb()


@pytest.fixture(scope="session")
def dns_zone() -> Iterator[Zone]:
    """A DNS zone served on loopback; tests publish records into it."""
    zone = Zone()
    server = DnsServer(zone)
    server.start()
    zone.port = server.port  # type: ignore[attr-defined]
    yield zone
    server.stop()


@pytest.fixture(scope="session")
def smtp_server() -> Iterator[SinkServer]:
    """The SMTP server standing in for Postfix's internal submission, on loopback."""
    server = SinkServer(free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture
def smtp_sink(smtp_server: SinkServer) -> Iterator[Sink]:
    """The sink's recorder; refusals, delays and stalls set by a test are undone after it."""
    yield smtp_server.sink
    smtp_server.sink.reset()


@pytest.fixture(scope="session")
def env(postgres: Postgres, redis_port: int, dns_zone: Zone, smtp_server: SinkServer) -> dict[str, str]:
    """The environment the API reads its settings from."""
    return {
        "POSTYARD_DATABASE_URL": postgres.url("postyard_app"),
        "POSTYARD_MIGRATION_DATABASE_URL": postgres.url("postyard_owner"),
        "POSTYARD_REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "POSTYARD_DATA_KEYS": f"{DATA_KEY_ID}:{base64.b64encode(DATA_KEY).decode()}",
        "POSTYARD_DNS_NAMESERVER": "127.0.0.1",
        "POSTYARD_DNS_PORT": str(dns_zone.port),  # type: ignore[attr-defined]
        "POSTYARD_DNS_TIMEOUT": "5",
        "POSTYARD_PUBLIC_URL": PUBLIC_URL,
        "POSTYARD_LOGIN_MAX_FAILURES_IP": "12",
        "POSTYARD_ANONYMOUS_RATE_LIMIT": "100000",
        "POSTYARD_LOG_LEVEL": "WARNING",
        "POSTYARD_SMTP_SUBMISSION_PORT": str(smtp_server.port),
        "POSTYARD_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8",
        "POSTYARD_DKIM_SETTLE_SECONDS": "0",
        "POSTYARD_WEBHOOK_RETRY_SCHEDULE": "0.1,0.1,0.1",
        "POSTYARD_WORKER_LEASE_SECONDS": "2",
        "POSTYARD_WORKER_POLL_INTERVAL": "0.1",
    }


@pytest.fixture(scope="session")
def settings(env: dict[str, str]) -> Settings:
    return Settings.from_env(env)


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[AsyncTestClient]:
    """The app behind Litestar's AsyncTestClient, over https so Secure cookies flow."""
    async with AsyncTestClient(app=create_app(settings), base_url=PUBLIC_URL) as c:
        yield c


# A deployment of two mail hosts, as POSTYARD_MAIL_HOSTNAMES names them (not sorted); this API host's
# POSTYARD_MAIL_HOSTNAME is the first by name, as the deploy writes it.
MAIL_HOSTS = ("mx2.postyard.test", "mx1.postyard.test")


@pytest.fixture
async def two_mail_hosts(env: dict[str, str]) -> AsyncIterator[AsyncTestClient]:
    """The app of a deployment with two mail hosts, behind Litestar's AsyncTestClient like `client`."""
    settings = Settings.from_env({**env, "POSTYARD_MAIL_HOSTNAME": min(MAIL_HOSTS),
                                  "POSTYARD_MAIL_HOSTNAMES": ",".join(MAIL_HOSTS)})
    async with AsyncTestClient(app=create_app(settings), base_url="https://testserver.local") as c:
        yield c


@dataclass
class TeamKey:
    """A team and a full-access API key of it."""

    team_id: uuid.UUID
    key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


@pytest.fixture
async def team(settings: Settings) -> TeamKey:
    team_id, key = await create_team(settings, f"team-{uuid.uuid4().hex[:6]}")
    return TeamKey(team_id, key)


@pytest.fixture
async def other_team(settings: Settings) -> TeamKey:
    team_id, key = await create_team(settings, f"other-{uuid.uuid4().hex[:6]}")
    return TeamKey(team_id, key)


@pytest.fixture(scope="session")
def server(env: dict[str, str]) -> Iterator[str]:
    """The app served by granian on loopback, as in production."""
    with granian_app(env) as url:
        yield url


@pytest.fixture
def server_team(server: str, settings: Settings, postgres: Postgres) -> TeamKey:
    """A fresh team with a full-access key for clients of the granian server, with high rate limits."""
    team_id, key = asyncio.run(create_team(settings, f"server-{uuid.uuid4().hex[:6]}"))
    postgres.psql(f"UPDATE teams SET rate_limit = 1000000, api_key_rate_limit = 1000000 WHERE id = '{team_id}'",
                  user="postyard_owner", database="postyard")
    return TeamKey(team_id, key)


def unique_domain() -> str:
    """A fresh domain name for one test."""
    return f"d{uuid.uuid4().hex[:10]}.example.test"


async def verified_domain(client: AsyncTestClient, team: TeamKey, postgres: Postgres) -> dict:
    """A domain of the team, marked verified (its DNS records are checked elsewhere)."""
    domain = (await client.post("/domains", json={"name": unique_domain()}, headers=team.headers)).json()
    postgres.psql(f"UPDATE domains SET status = 'verified' WHERE id = '{domain['id']}'",
                  user="postyard_owner", database="postyard")
    return domain


@pytest.fixture
async def sender(client: AsyncTestClient, team: TeamKey, postgres: Postgres) -> str:
    """A verified domain of `team`; returns its name."""
    return (await verified_domain(client, team, postgres))["name"]


@pytest.fixture
async def owner_engine(settings: Settings) -> AsyncIterator[object]:
    """An engine on the owner role (as the worker, log follower and bounce pipe connect)."""
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(settings.system_database_url)
    yield engine
    await engine.dispose()


async def as_operator_cli(settings: Settings, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run `work(db)` in one transaction as the database owner, as `postyard-api admin ...` does on a host."""
    return await in_owner_transaction(settings, work)


async def new_team_invite(settings: Settings, email: str | None = None, hours: int = 1) -> str:
    """The token of an operator's one-time invite to start a team."""
    from app.domain.operators.services import Actor, invite_team

    _, token = await as_operator_cli(settings, lambda db: invite_team(db, Actor(), email, hours))
    return token


async def sign_up(client: AsyncTestClient, email: str, password: str, team_name: str = "Acme") -> httpx.Response:
    """POST /auth/register with a fresh operator's invite, to start a team (the client's app's settings)."""
    settings = client.app.state.services.settings
    invite = await new_team_invite(settings)
    return await client.post("/auth/register", json={"email": email, "password": password, "team_name": team_name,
                                                     "invite": invite})


FAIL_AT_COMMIT = "refused at commit"
FAIL_AT_INSERT = "refused at insert"


@pytest.fixture
def commits() -> Iterator[list[object]]:
    """The database commits this process makes during the test (every engine's)."""
    made: list[object] = []

    def count(connection: object) -> None:
        made.append(connection)

    event.listen(Engine, "commit", count)
    yield made
    event.remove(Engine, "commit", count)


def _failing_trigger(postgres: Postgres, subject: str, deferred: bool) -> Iterator[None]:
    """A trigger that fails (SQLSTATE P0001, as an unforeseen error would) the insert of an email with that
    subject, or the commit of the transaction holding it."""
    timing = "DEFERRABLE INITIALLY DEFERRED" if deferred else ""
    postgres.psql(f"""
        CREATE FUNCTION test_fail() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN IF NEW.subject = '{subject}' THEN RAISE EXCEPTION '{subject}'; END IF; RETURN NULL; END $$;
        GRANT EXECUTE ON FUNCTION test_fail() TO {APP};
        CREATE CONSTRAINT TRIGGER test_fail AFTER INSERT ON emails {timing}
            FOR EACH ROW EXECUTE FUNCTION test_fail();""", user="postyard_owner", database="postyard")
    yield
    postgres.psql("DROP TRIGGER test_fail ON emails; DROP FUNCTION test_fail();", user="postyard_owner",
                  database="postyard")


@pytest.fixture
def failing_commit(postgres: Postgres) -> Iterator[None]:
    """The commit of any transaction holding an email whose subject is FAIL_AT_COMMIT fails."""
    yield from _failing_trigger(postgres, FAIL_AT_COMMIT, deferred=True)


@pytest.fixture
def failing_insert(postgres: Postgres) -> Iterator[None]:
    """The insert of an email whose subject is FAIL_AT_INSERT fails with an error no rule foresaw."""
    yield from _failing_trigger(postgres, FAIL_AT_INSERT, deferred=False)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A webhook endpoint on loopback that records what it is sent."""
    r = Receiver()
    server = r.serve()
    yield r
    server.shutdown()
    server.server_close()


@pytest.fixture
async def dispatcher(settings: Settings, owner_engine: Any) -> AsyncIterator[Dispatcher]:
    """The webhook dispatcher, delivering on the test's call (`webhook_support.deliver_all`)."""
    d = Dispatcher(settings, owner_engine, Keyring(settings.data_keys, settings.active_data_key_id))
    yield d
    await d.close()
