"""What the API benchmarks share: PostgreSQL 15 and Redis on loopback, the app on granian, and the
route driver and table that print throughput and p50/p99 against /ping."""

from __future__ import annotations

import asyncio
import base64
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from figures import markdown_table  # noqa: E402

from app.cli import create_team  # noqa: E402
from app.config import Settings  # noqa: E402
from app.db import migrate  # noqa: E402
from postyard.local_stack.postgres import ROLES, Postgres, free_port, wait_for_port  # noqa: E402
from postyard.local_stack.smtp_sink import SinkServer  # noqa: E402

__all__ = [
    "ROOT", "SinkServer", "Stack", "free_port", "local_stack", "measure", "print_results", "results_table", "serve",
    "unlimited_team",
]

Route = tuple[str, str, str, dict | None]  # label, method, path, JSON body


@dataclass
class Stack:
    pg: Postgres
    redis_port: int

    def env(self, **extra: str) -> dict[str, str]:
        return {
            "POSTYARD_DATABASE_URL": self.pg.url("postyard_app"),
            "POSTYARD_MIGRATION_DATABASE_URL": self.pg.url("postyard_owner"),
            "POSTYARD_REDIS_URL": f"redis://127.0.0.1:{self.redis_port}/0",
            "POSTYARD_DATA_KEYS": f"bench:{base64.b64encode(os.urandom(32)).decode()}",
            "POSTYARD_LOG_LEVEL": "WARNING",
            **extra,
        }

    def owner_sql(self, sql: str) -> str:
        return self.pg.psql(sql, user="postyard_owner", database="postyard").strip()


@contextmanager
def local_stack() -> Iterator[Stack]:
    """A migrated PostgreSQL and an empty Redis, removed afterwards."""
    root = Path(tempfile.mkdtemp(prefix="postyard-bench-"))
    os.chmod(root, 0o755)
    pg = Postgres(root=root, port=free_port())
    redis_port = free_port()
    pg.start()
    redis = subprocess.Popen(["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
                              "--appendonly", "no"], stdout=subprocess.DEVNULL)
    try:
        pg.psql("".join(f"CREATE ROLE {r} LOGIN;" for r in ROLES))
        pg.psql("CREATE DATABASE postyard OWNER postyard_owner;")
        migrate.upgrade(pg.url("postyard_owner"))
        wait_for_port(redis_port)
        yield Stack(pg, redis_port)
    finally:
        redis.terminate()
        redis.wait(10)
        pg.stop()
        subprocess.run(["rm", "-rf", str(root)], check=False)


_TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int, children: bool) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12]) + ((int(fields[13]) + int(fields[14])) if children else 0)
    return ticks / _TICKS


def postgres_cpu(stack: Stack) -> float:
    """The postmaster's CPU with its reaped children's, plus its live children's."""
    postmaster = int((stack.pg.root / "data" / "postmaster.pid").read_text().split()[0])
    total = _cpu_seconds(postmaster, children=True)
    for child in Path(f"/proc/{postmaster}/task/{postmaster}/children").read_text().split():
        try:
            total += _cpu_seconds(int(child), children=True)
        except FileNotFoundError:
            pass
    return total


def unlimited_team(stack: Stack, env: dict[str, str]) -> str:
    """A team whose rate limits never interfere; returns its full-access API key."""
    team_id, key = asyncio.run(create_team(Settings.from_env(env), "bench"))
    stack.owner_sql(f"UPDATE teams SET rate_limit = 100000000, api_key_rate_limit = 100000000 WHERE id = '{team_id}'")
    return key


@contextmanager
def serve(env: dict[str, str], workers: int) -> Iterator[str]:
    """The app on granian; yields its base URL."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "granian", "--interface", "asgi", "--factory", "--host", "127.0.0.1", "--port",
         str(port), "--workers", str(workers), "--no-ws", "--log-level", "warning", "app.asgi:create_app"],
        env={**os.environ, **env}, cwd=ROOT)
    try:
        wait_for_port(port)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(10)


async def drive(url: str, method: str, headers: dict[str, str], body: dict | None, seconds: float,
                concurrency: int) -> tuple[int, list[float]]:
    """Send requests from `concurrency` clients for `seconds`; return (count, latencies in ms)."""
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(headers=headers, limits=limits, timeout=30) as client:

        async def worker() -> None:
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                response = await client.request(method, url, json=body)
                latencies.append((time.perf_counter() - started) * 1000)
                if response.status_code >= 300:
                    raise RuntimeError(f"{method} {url}: {response.status_code} {response.text[:200]}")

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return len(latencies), latencies


def measure(base: str, headers: dict[str, str], routes: list[Route], seconds: float,
            concurrency: int) -> dict[str, tuple[float, float, float]]:
    """{label: (requests/s, p50 ms, p99 ms)} for each route, after a one-second warm-up."""
    results = {}
    for label, method, path, body in routes:
        asyncio.run(drive(base + path, method, headers, body, 1.0, concurrency))
        count, latencies = asyncio.run(drive(base + path, method, headers, body, seconds, concurrency))
        cuts = statistics.quantiles(latencies, n=100)
        results[label] = (count / seconds, cuts[49], cuts[98])
    return results


def print_results(results: dict[str, tuple[float, float, float]], heading: str) -> None:
    baseline = results["GET /ping"][0]
    print(heading)
    print(f"{'route':<16} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'vs /ping':>9}")
    for label, (rps, p50, p99) in results.items():
        print(f"{label:<16} {rps:>8.0f} {p50:>8.1f} {p99:>8.1f} {rps / baseline:>9.2f}")


def results_table(results: dict[str, tuple[float, float, float]]) -> str:
    """The same figures as a Markdown table for docs/benchmarks.md."""
    baseline = results["GET /ping"][0]
    rows = [[f"`{label}`", f"{rps:.0f}", f"{p50:.1f} ms", f"{p99:.0f} ms", f"{rps / baseline:.2f}"]
            for label, (rps, p50, p99) in results.items()]
    return markdown_table(["route", "req/s", "p50", "p99", "vs `GET /ping`, the baseline"], rows)
