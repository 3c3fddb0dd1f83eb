"""Hostile webhook endpoints (one that hangs, one that drip-feeds a byte a second, one that answers 100 MB) hold up
neither another team's webhooks nor the worker's mail: each attempt ends at its deadline, at most the response cap
is read, and the webhook process runs apart from the worker."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import socket
import socketserver
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import msgspec
import pytest
from conftest import verified_domain
from test_emails import message

from app.domain.webhooks.dispatcher import Dispatcher
from app.lib.crypto import Keyring

_LOGS: dict[int, IO[bytes]] = {}
HUGE_BYTES = 100 * 1024 * 1024
_MEGABYTE = memoryview(bytes(1024 * 1024))
_DRIPPED = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
# The deadline the tests give each attempt (the default is 10 s); retries wait a minute, so a hostile
# endpoint stays subscribed (and hostile) for the whole test rather than being disabled.
DEADLINE = 3.0
PROCESS_ENV = {"POSTYARD_WEBHOOK_TIMEOUT": str(DEADLINE), "POSTYARD_WEBHOOK_RETRY_SCHEDULE": "60,60,60",
               "POSTYARD_WEBHOOK_CONCURRENCY": "8", "POSTYARD_WEBHOOK_TEAM_CONCURRENCY": "4",
               "POSTYARD_WEBHOOK_ENDPOINT_CONCURRENCY": "2"}


def _read_request(conn: socket.socket) -> bytes:
    """One HTTP request's body (the dispatcher always sends a Content-Length)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return b""
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(re.search(rb"(?i)content-length:\s*(\d+)", head).group(1))  # type: ignore[union-attr]
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        body += chunk
    return body


class Endpoint:
    """An HTTP endpoint on loopback that reads each request, then answers it as `behaviour` does."""

    def __init__(self, behaviour: Callable[[Endpoint, socket.socket, bytes], None]) -> None:
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.open = self.connections = self.sent = 0
        self.arrivals: list[tuple[float, bytes]] = []
        endpoint = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                with endpoint.lock:
                    endpoint.open += 1
                    endpoint.connections += 1
                try:
                    self.request.settimeout(5)
                    behaviour(endpoint, self.request, _read_request(self.request))
                except OSError:
                    pass  # the dispatcher hung up
                finally:
                    with endpoint.lock:
                        endpoint.open -= 1

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            block_on_close = False

        self.server = Server(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def count_sent(self, n: int) -> None:
        with self.lock:
            self.sent += n

    def close(self) -> None:
        self.stopping.set()
        self.server.shutdown()
        self.server.server_close()


def hangs(endpoint: Endpoint, conn: socket.socket, body: bytes) -> None:
    """Never answers; holds the connection until the dispatcher closes it."""
    conn.settimeout(0.5)
    while not endpoint.stopping.is_set():
        try:
            if not conn.recv(1):
                return
        except TimeoutError:
            continue


def drips(endpoint: Endpoint, conn: socket.socket, body: bytes) -> None:
    """Answers 200, one byte a second: every read gets something, so no read ever times out."""
    for byte in _DRIPPED:
        if endpoint.stopping.wait(1.0):
            return
        conn.sendall(bytes([byte]))
        endpoint.count_sent(1)


def drips_its_body(endpoint: Endpoint, conn: socket.socket, body: bytes) -> None:
    """Answers 200 at once, then its body a byte a second."""
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n")
    while not endpoint.stopping.wait(1.0):
        conn.sendall(b".")
        endpoint.count_sent(1)


def floods(endpoint: Endpoint, conn: socket.socket, body: bytes) -> None:
    """Answers 200 with a 100 MB body, as fast as it is taken."""
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % HUGE_BYTES)
    for _ in range(HUGE_BYTES // len(_MEGABYTE)):
        conn.sendall(_MEGABYTE)
        endpoint.count_sent(len(_MEGABYTE))


def behaves(endpoint: Endpoint, conn: socket.socket, body: bytes) -> None:
    """Notes when the delivery arrived and answers 200 at once."""
    with endpoint.lock:
        endpoint.arrivals.append((time.monotonic(), body))
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")


@pytest.fixture
def endpoints() -> Iterator[Callable[[Callable[[Endpoint, socket.socket, bytes], None]], Endpoint]]:
    """Start endpoints with a given behaviour; all are closed after the test."""
    started: list[Endpoint] = []

    def start(behaviour: Callable[[Endpoint, socket.socket, bytes], None]) -> Endpoint:
        started.append(Endpoint(behaviour))
        return started[-1]

    yield start
    for endpoint in started:
        endpoint.close()


async def _subscribe(client, team, endpoint: Endpoint, events=("email.queued",)) -> str:
    response = await client.post("/webhooks", json={"endpoint": endpoint.url, "events": list(events)},
                                 headers=team.headers)
    assert response.status_code == 201
    return response.json()["id"]


async def _latest_delivery(client, team, hook_id: str) -> dict:
    return (await client.get(f"/webhooks/{hook_id}/deliveries", headers=team.headers)).json()["data"][0]


@pytest.fixture
async def timed_dispatcher(settings, owner_engine):
    """A dispatcher in this process whose attempts end after 1.5 s."""
    d = Dispatcher(msgspec.structs.replace(settings, webhook_timeout=1.5), owner_engine,
                   Keyring(settings.data_keys, settings.active_data_key_id))
    yield d
    await d.close()


@pytest.mark.parametrize("behaviour", [hangs, drips], ids=["hangs", "drips"])
async def test_an_endpoint_that_hangs_or_drip_feeds_its_answer_is_given_up_at_the_deadline(
        client, team, sender, endpoints, timed_dispatcher, behaviour):
    endpoint = endpoints(behaviour)
    hook_id = await _subscribe(client, team, endpoint)
    await client.post("/emails", json=message(sender), headers=team.headers)
    started = time.monotonic()
    await timed_dispatcher.deliver_once()
    elapsed = time.monotonic() - started
    delivery = await _latest_delivery(client, team, hook_id)
    print(f"\n{behaviour.__name__}: the attempt ended after {elapsed:.2f} s (deadline 1.5 s), "
          f"{endpoint.sent} bytes dripped")
    assert endpoint.connections == 1 and elapsed < 1.5 + 1.0
    assert delivery["state"] == "pending" and delivery["last_error"] == "no answer within 1.5 s"


async def test_once_the_status_line_has_come_a_drip_fed_body_is_cut_at_the_deadline_and_the_status_counts(
        client, team, sender, endpoints, timed_dispatcher):
    endpoint = endpoints(drips_its_body)
    hook_id = await _subscribe(client, team, endpoint)
    await client.post("/emails", json=message(sender), headers=team.headers)
    started = time.monotonic()
    await timed_dispatcher.deliver_once()
    elapsed = time.monotonic() - started
    delivery = await _latest_delivery(client, team, hook_id)
    assert elapsed < 1.5 + 1.0
    assert delivery["state"] == "succeeded" and delivery["last_status_code"] == 200


async def test_of_a_100_mb_answer_only_the_cap_is_read_and_its_status_counts(client, team, sender, endpoints,
                                                                            timed_dispatcher, settings):
    endpoint = endpoints(floods)
    hook_id = await _subscribe(client, team, endpoint)
    await client.post("/emails", json=message(sender), headers=team.headers)
    tracemalloc.start()
    try:
        started = time.monotonic()
        await timed_dispatcher.deliver_once()
        elapsed = time.monotonic() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    delivery = await _latest_delivery(client, team, hook_id)
    print(f"\n100 MB answer: done in {elapsed:.2f} s, peak Python memory {peak / 1e6:.1f} MB, "
          f"the endpoint got {endpoint.sent / 1e6:.1f} MB into the socket (cap "
          f"{settings.webhook_max_response_bytes} bytes)")
    assert delivery["state"] == "succeeded" and delivery["last_status_code"] == 200
    assert peak < 8_000_000 and endpoint.sent < HUGE_BYTES and elapsed < 1.5


def _start(env: dict[str, str], command: str, **extra: str) -> subprocess.Popen:
    """`postyard-api <command>` in a process of its own, as its systemd unit runs it; its log goes to a file that
    `_running` shows if the process has ended."""
    log = tempfile.TemporaryFile()
    process = subprocess.Popen([sys.executable, "-m", "app.cli", command], env={**os.environ, **env, **extra},
                               stdout=log, stderr=subprocess.STDOUT)
    _LOGS[process.pid] = log
    return process


def _stop(process: subprocess.Popen) -> None:
    process.terminate()
    process.wait(DEADLINE + 10)
    _LOGS.pop(process.pid).close()


def _running(*processes: subprocess.Popen) -> None:
    """Fail, with the end of its log, if one of `processes` has ended."""
    for process in processes:
        if process.poll() is not None:
            log = _LOGS[process.pid]
            log.seek(0)
            tail = log.read().decode(errors="replace")[-3000:]
            pytest.fail(f"{process.args[-1]} ended with {process.returncode}:\n{tail}")


def _memory_kb(process: subprocess.Popen, field: str) -> int:
    """VmRSS (now) or VmHWM (the peak) of a running process, in kB."""
    status = Path(f"/proc/{process.pid}/status").read_text()
    return int(re.search(rf"^{field}:\s+(\d+) kB", status, re.MULTILINE).group(1))  # type: ignore[union-attr]


async def _until(predicate: Callable[[], bool], timeout: float = 30.0, what: str = "the condition",
                 processes: tuple[subprocess.Popen, ...] = ()) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        _running(*processes)
        assert time.monotonic() < deadline, f"timed out after {timeout:g} s waiting for {what}"
        await asyncio.sleep(0.01)


async def _latencies(client, team, sender: str, endpoint: Endpoint, count: int) -> list[float]:
    """Seconds from sending each of `count` emails (one after the other) to its webhook's arrival."""
    latencies = []
    for _ in range(count):
        posted = time.monotonic()
        email_id = (await client.post("/emails", json=message(sender), headers=team.headers)).json()["id"]
        await _until(lambda: _arrival(endpoint, email_id) is not None)  # noqa: B023 - awaited right here
        latencies.append(_arrival(endpoint, email_id) - posted)  # type: ignore[operator]
    return latencies


def _arrival(endpoint: Endpoint, email_id: str) -> float | None:
    """When the endpoint received the webhook of the email, if it has."""
    with endpoint.lock:
        return next((at for at, body in endpoint.arrivals if email_id.encode() in body), None)


class RssSampler:
    """The highest VmRSS of a process, sampled every 20 ms while running (VmHWM also holds its start-up peak)."""

    def __init__(self, process: subprocess.Popen) -> None:
        self.process, self.peak = process, 0
        self.task = asyncio.create_task(self._sample())

    async def _sample(self) -> None:
        while True:
            self.peak = max(self.peak, _memory_kb(self.process, "VmRSS"))
            await asyncio.sleep(0.02)

    async def stop(self) -> int:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
        return self.peak


async def test_another_teams_webhooks_arrive_on_time_while_hostile_endpoints_hold_their_slots(
        client, team, sender, other_team, postgres, endpoints, env):
    good = endpoints(behaves)
    hostile = {behaviour.__name__: endpoints(behaviour) for behaviour in (hangs, drips, floods)}
    other_sender = (await verified_domain(client, other_team, postgres))["name"]
    await _subscribe(client, other_team, good)
    process = _start(env, "webhooks", **PROCESS_ENV)
    hooks = []
    try:
        await _latencies(client, other_team, other_sender, good, 2)  # the process is up
        started_rss = _memory_kb(process, "VmRSS")
        alone = await _latencies(client, other_team, other_sender, good, 8)
        sampler = RssSampler(process)
        hooks = [await _subscribe(client, team, endpoint) for endpoint in hostile.values()]
        for _ in range(10):
            await client.post("/emails", json=message(sender), headers=team.headers)
        await _until(lambda: hostile["hangs"].open > 0 and hostile["drips"].open > 0,
                     what="the hostile endpoints to be held", processes=(process,))
        beside = await _latencies(client, other_team, other_sender, good, 8)
        still_held = hostile["hangs"].open + hostile["drips"].open
        await _until(lambda: hostile["floods"].connections >= 3, timeout=60, what="three floods",
                     processes=(process,))
        peak_rss = await sampler.stop()
    finally:
        _stop(process)
        for hook_id in hooks:
            await client.delete(f"/webhooks/{hook_id}", headers=team.headers)
    print(f"\nanother team's webhook latency, alone: median {statistics.median(alone):.3f} s, max {max(alone):.3f} s; "
          f"beside the hostile endpoints: median {statistics.median(beside):.3f} s, max {max(beside):.3f} s "
          f"(deadline {DEADLINE} s)")
    print(f"webhook process memory: {started_rss / 1024:.0f} MB before the hostile endpoints, at most "
          f"{peak_rss / 1024:.0f} MB beside them, after {hostile['floods'].connections} answers of 100 MB")
    assert still_held > 0  # the hostile endpoints held their slots throughout
    assert max(beside) < max(alone) + 1.0 < DEADLINE
    assert peak_rss - started_rss < 20 * 1024


async def _queue(client, team, sender: str, count: int) -> set[str]:
    """Send `count` emails in batches; their Message-IDs."""
    ids: list[str] = []
    while len(ids) < count:
        batch = [message(sender) for _ in range(min(100, count - len(ids)))]
        response = await client.post("/emails/batch", json=batch, headers=team.headers)
        assert response.status_code == 200
        ids += [e["id"] for e in response.json()["data"]]
    return {f"<{i}@{sender}>" for i in ids}


async def _drain_time(env: dict[str, str], smtp_sink, waiting: set[str]) -> float:
    """Seconds a worker started on the queued emails takes from handing the first of them to the sink to the last."""
    with smtp_sink.lock:
        seen = len(smtp_sink.messages)
    first = last = 0.0
    deadline = time.monotonic() + 120
    worker = _start(env, "worker")
    try:
        while waiting:
            with smtp_sink.lock:
                new = smtp_sink.messages[seen:]
            seen += len(new)
            arrived = [m for m in new if m.message_id in waiting]
            if arrived:
                last = time.monotonic()
                first = first or last
                waiting.difference_update(m.message_id for m in arrived)
            _running(worker)
            assert time.monotonic() < deadline, f"{len(waiting)} emails still unsent after 120 s"
            await asyncio.sleep(0.005)
    finally:
        _stop(worker)
    return last - first


async def _set_status(client, team, hook_ids: list[str], status: str) -> None:
    for hook_id in hook_ids:
        response = await client.patch(f"/webhooks/{hook_id}", json={"status": status}, headers=team.headers)
        assert response.status_code == 200


async def test_the_worker_sends_mail_at_the_same_pace_while_hostile_endpoints_are_subscribed(
        client, team, sender, env, endpoints, smtp_sink):
    # Enough mail per round that a round takes seconds, not a fraction of one that scheduling noise swamps.
    count, rounds = 1000, 5
    hostile = [endpoints(behaviour) for behaviour in (hangs, drips, floods)]
    webhooks = _start(env, "webhooks", **PROCESS_ENV)
    hooks: list[str] = []
    alone: list[float] = []
    beside: list[float] = []
    held: list[int] = []
    try:
        await _drain_time(env, smtp_sink, await _queue(client, team, sender, 20))  # earlier tests' mail goes too
        hooks = [await _subscribe(client, team, endpoint, ("email.queued", "email.sent")) for endpoint in hostile]
        # Rounds alternate, so that whatever else loads the machine weighs on both alike.
        for _ in range(rounds):
            await _set_status(client, team, hooks, "disabled")
            await _until(lambda: hostile[0].open == 0 and hostile[1].open == 0,
                         what="the disabled endpoints' connections to close", timeout=60, processes=(webhooks,))
            alone.append(await _drain_time(env, smtp_sink, await _queue(client, team, sender, count)))
            await _set_status(client, team, hooks, "enabled")
            waiting = await _queue(client, team, sender, count)
            await _until(lambda: hostile[0].open > 0 and hostile[1].open > 0,
                         what="the enabled endpoints to be held", timeout=60, processes=(webhooks,))
            beside.append(await _drain_time(env, smtp_sink, waiting))
            held.append(hostile[0].open + hostile[1].open)
    finally:
        _stop(webhooks)
        for hook_id in hooks:
            await client.delete(f"/webhooks/{hook_id}", headers=team.headers)
    print(f"\nthe worker sent {count} emails in {', '.join(f'{t:.2f}' for t in alone)} s alone and in "
          f"{', '.join(f'{t:.2f}' for t in beside)} s with the hostile endpoints subscribed, holding their slots "
          f"(best {min(alone):.2f} s and {min(beside):.2f} s, {min(beside) / min(alone) - 1:+.1%}; medians "
          f"{statistics.median(alone):.2f} s and {statistics.median(beside):.2f} s)")
    assert min(held) > 0
    # The middle round of each within 10%: alternating rounds share the machine's other load alike, and the median
    # is not swayed by one round that happened to run alone on the cores.
    assert statistics.median(beside) <= statistics.median(alone) * 1.10
