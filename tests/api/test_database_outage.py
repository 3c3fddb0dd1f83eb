"""A database that stops answering: every client gives up within its bounds, answers 503 or 451 meanwhile,
and recovers by itself when the database returns."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Coroutine, Iterator
from email.message import EmailMessage
from typing import Any, TypeVar

import aiosmtplib
import msgspec
import pytest
from conftest import TeamKey
from litestar.testing import AsyncTestClient
from sqlalchemy import text
from test_dkim_sync import KEYRING, has_key_file, verified_domain
from test_emails import message
from test_smtp_intake import running_intake

from app.asgi import create_app
from app.config import Settings
from app.db.engines import create_engine
from app.mailhost.dkim_sync import run as run_dkim_sync
from app.mailhost.worker import run_worker

T = TypeVar("T")
# What a client may need beyond its configured bounds to notice, answer and log.
MARGIN = 1.5


class Link:
    """A TCP path on loopback to PostgreSQL that can fall silent, served by a thread of its own (the test
    client blocks the test's event loop while the app answers).

    While silent it still accepts connections and takes in whatever clients send, but passes nothing on
    either way: a database host that stopped answering. (The kernel here still acknowledges what is sent,
    so only the clients' own timeouts notice; that is harder for them than packets dropped on the way.)
    `restore` lets traffic through again and drops the connections open until then, as a database back
    from an outage has none of its old sessions.
    """

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.silent = False
        self.port = 0
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def url(self, role: str) -> str:
        return f"postgresql+asyncpg://{role}@127.0.0.1:{self.port}/postyard"

    def _call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(10)

    def __enter__(self) -> Link:
        self._thread.start()
        self._server = self._call(asyncio.start_server(self._accept, "127.0.0.1", 0))
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def __exit__(self, *_: object) -> None:
        self._call(self._stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def silence(self) -> None:
        self.silent = True

    def restore(self) -> None:
        self.silent = False
        self._call(self._drop())

    async def _stop(self) -> None:
        self._server.close()
        await self._drop()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def _drop(self) -> None:
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        pipes = [(reader, None)]
        if not self.silent:
            upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
            self._writers.add(upstream_writer)
            pipes = [(reader, upstream_writer), (upstream_reader, writer)]
        for source, sink in pipes:
            task = asyncio.create_task(self._pipe(source, sink))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pipe(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter | None) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await source.read(65536):
                if sink is not None and not self.silent:
                    sink.write(data)
                    await sink.drain()
        if sink is not None:
            sink.transport.abort()


@pytest.fixture
def link(postgres) -> Iterator[Link]:
    with Link(postgres.port) as path:
        yield path


def through(settings: Settings, link: Link, **changes: object) -> Settings:
    """The settings with every database URL going through `link`."""
    return msgspec.structs.replace(settings, database_url=link.url("postyard_app"),
                                   migration_database_url=link.url("postyard_owner"),
                                   service_database_url=link.url("postyard_owner"), **changes)


async def timed_get(client: AsyncTestClient, team: TeamKey) -> tuple[int, float, dict, dict]:
    started = time.monotonic()
    response = await client.get("/domains", headers=team.headers)
    return response.status_code, time.monotonic() - started, dict(response.headers), response.json()


async def test_every_connection_carries_the_statement_idle_and_keepalive_bounds(settings):
    expected = {"statement_timeout": "30s", "idle_in_transaction_session_timeout": "1min",
                "tcp_keepalives_idle": "30", "tcp_keepalives_interval": "10", "tcp_keepalives_count": "3",
                "tcp_user_timeout": "15000"}
    for statements, statement_timeout in ((True, "30s"), (False, "0")):
        engine = create_engine(settings.owner_database_url, settings, "postyard-test", statements=statements)
        try:
            async with engine.connect() as conn:
                shown = {name: (await conn.execute(text(f"SHOW {name}"))).scalar_one() for name in expected}
                application = (await conn.execute(text("SHOW application_name"))).scalar_one()
                sock = (await conn.get_raw_connection()).driver_connection._transport.get_extra_info("socket")
                client_side = (sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE),
                               sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE),
                               sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT))
        finally:
            await engine.dispose()
        assert shown == {**expected, "statement_timeout": statement_timeout}
        assert application == "postyard-test" and client_side == (1, 30, 15000)


async def test_a_statement_the_database_stops_answering_is_abandoned_and_its_connection_dropped(settings, link):
    bounded = msgspec.structs.replace(settings, database_connect_timeout=1.0, database_statement_timeout=1.0)
    engine = create_engine(link.url("postyard_owner"), bounded, "postyard-test")
    try:
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
                link.silence()
                await conn.execute(text("SELECT 1"))
        # asyncpg's command timeout (statement timeout + connect timeout), and no wait to give it back.
        assert time.monotonic() - started < 2.0 + MARGIN
        link.restore()
        async with engine.connect() as conn:
            assert (await conn.execute(text("SELECT 1"))).scalar_one() == 1
    finally:
        await engine.dispose()


async def test_an_api_whose_database_never_answers_gets_503_with_retry_after_within_the_connect_timeout(
        settings, team, link):
    link.silence()
    async with AsyncTestClient(app=create_app(through(settings, link)), base_url="https://testserver.local") as client:
        status, elapsed, headers, body = await timed_get(client, team)
    assert status == 503 and headers["retry-after"].isdigit()
    assert body == {"statusCode": 503, "name": "service_unavailable",
                    "message": "The service is briefly unavailable; try again"}
    assert elapsed < settings.database_connect_timeout + MARGIN, elapsed


async def test_the_api_answers_503_while_its_database_is_silent_and_200_again_once_it_returns(
        settings, team, link):
    async with AsyncTestClient(app=create_app(through(settings, link)), base_url="https://testserver.local") as client:
        assert (await timed_get(client, team))[0] == 200
        link.silence()
        status, elapsed, headers, _ = await timed_get(client, team)
        # A pooled connection gets one connect timeout to answer its ping, its replacement another.
        assert status == 503 and headers["retry-after"].isdigit()
        assert elapsed < 2 * settings.database_connect_timeout + MARGIN, elapsed
        link.restore()
        assert (await timed_get(client, team))[0] == 200


def _message(sender: str) -> EmailMessage:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = f"orders@{sender}", "buyer@example.org", "Your order"
    message.set_content("Thanks for your order.\n")
    return message


async def _submit(path: object, sender: str) -> tuple[int, str]:
    try:
        _, reply = await aiosmtplib.send(_message(sender), socket_path=str(path), local_hostname="mail.test")
    except aiosmtplib.SMTPResponseException as refused:
        return refused.code, refused.message
    return 250, reply


async def test_the_intake_answers_451_while_its_database_is_silent_and_250_once_it_returns(
        settings, sender, link):
    async with running_intake(through(settings, link)) as path:
        link.silence()
        started = time.monotonic()
        code, reply = await _submit(path, sender)
        elapsed = time.monotonic() - started
        assert (code, reply[:6]) == (451, "4.3.0 ") and elapsed < settings.database_connect_timeout + MARGIN
        link.restore()
        code, reply = await _submit(path, sender)
        assert code == 250 and "queued as" in reply


async def _until(condition, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if await asyncio.to_thread(condition):
            return True
        await asyncio.sleep(0.1)
    return False


async def test_the_worker_listens_again_once_its_database_returns(client, team, sender, settings, link, postgres,
                                                                   smtp_sink):
    # Polling once a minute: only a notification can bring the email out within seconds.
    stop = asyncio.Event()
    worker = asyncio.create_task(run_worker(through(settings, link, worker_poll_interval=60.0), stop))

    def listening() -> bool:
        return postgres.psql("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'postyard-worker' "
                             "AND query LIKE 'LISTEN%'").strip() == "1"

    try:
        assert await _until(listening, 5)
        link.silence()
        await asyncio.sleep(1)
        link.restore()
        assert await _until(listening, settings.database_connect_timeout + 5)
        email_id = (await client.post("/emails", json=message(sender), headers=team.headers)).json()["id"]
        message_id = (await client.get(f"/emails/{email_id}", headers=team.headers)).json()["message_id"]
        assert await _until(lambda: len(smtp_sink.for_message_id(message_id)) == 1, 5)
    finally:
        stop.set()
        await worker


async def test_the_dkim_sync_connects_again_once_its_database_returns(client, team, dns_zone, settings, link,
                                                                      tmp_path):
    service = asyncio.create_task(run_dkim_sync(link.url("postyard_mail").replace("+asyncpg", ""), KEYRING,
                                                tmp_path, None, poll_seconds=3600, settings=settings))
    try:
        await asyncio.sleep(0.5)
        link.silence()
        await asyncio.sleep(1)
        link.restore()
        domain = await verified_domain(client, team, dns_zone)
        assert await _until(lambda: has_key_file(tmp_path, domain), 10)
    finally:
        service.cancel()
        await asyncio.gather(service, return_exceptions=True)
