"""Benchmark: API-key-authenticated routes on granian with real PostgreSQL and Redis, against /ping.

    .venv/bin/python bench/api.py [--seconds 5] [--concurrency 16] [--workers 1]

Starts its own PostgreSQL 15 and Redis on loopback (as the API suite does), migrates, serves the app
with granian, and drives each route with an async HTTP client from the same machine. Prints
throughput and p50/p99 latency of `GET /domains` and `POST /api-keys` beside the trivial
`GET /ping` of the same app, and each route's throughput as a ratio of /ping's.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "api"))

from api_support import ROLES, Postgres, free_port, wait_for_port  # noqa: E402
from app.cli import create_team  # noqa: E402
from app.config import Settings  # noqa: E402
from app.db import migrate  # noqa: E402


async def drive(url: str, method: str, headers: dict[str, str], body: dict | None, seconds: float,
                concurrency: int) -> tuple[int, list[float]]:
    """Send requests from `concurrency` workers for `seconds`; return (count, latencies in ms)."""
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


def main() -> int:
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("--seconds", type=float, default=5.0)
    options.add_argument("--concurrency", type=int, default=16)
    options.add_argument("--workers", type=int, default=1)
    args = options.parse_args()

    root = Path(tempfile.mkdtemp(prefix="postyard-bench-"))
    os.chmod(root, 0o755)
    pg = Postgres(root=root, port=free_port())
    redis_port = free_port()
    pg.start()
    redis = subprocess.Popen(["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
                              "--appendonly", "no"], stdout=subprocess.DEVNULL)
    server = None
    try:
        pg.psql("".join(f"CREATE ROLE {r} LOGIN;" for r in ROLES) + "")
        pg.psql("CREATE DATABASE postyard OWNER postyard_owner;")
        migrate.upgrade(pg.url("postyard_owner"))
        wait_for_port(redis_port)
        env = {
            "POSTYARD_DATABASE_URL": pg.url("postyard_app"),
            "POSTYARD_REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
            "POSTYARD_DATA_KEYS": f"bench:{base64.b64encode(os.urandom(32)).decode()}",
            "POSTYARD_LOG_LEVEL": "WARNING",
        }
        settings = Settings.from_env(env)
        team_id, key = asyncio.run(create_team(settings, "bench"))
        pg.psql(f"UPDATE teams SET rate_limit = 100000000, api_key_rate_limit = 100000000 WHERE id = '{team_id}'",
                user="postyard_owner", database="postyard")
        port = free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "granian", "--interface", "asgi", "--factory", "--host", "127.0.0.1", "--port",
             str(port), "--workers", str(args.workers), "--no-ws", "--log-level", "warning", "app.asgi:create_app"],
            env={**os.environ, **env}, cwd=ROOT)
        wait_for_port(port)
        base = f"http://127.0.0.1:{port}"
        headers = {"Authorization": f"Bearer {key}"}
        for _ in range(3):
            httpx.post(f"{base}/domains", json={"name": f"d{_}.bench.test"}, headers=headers).raise_for_status()
        routes = [("GET /ping", "GET", "/ping", None), ("GET /domains", "GET", "/domains", None),
                  ("POST /api-keys", "POST", "/api-keys", {"name": "bench"})]
        results: dict[str, tuple[float, float, float]] = {}
        for label, method, path, body in routes:
            asyncio.run(drive(base + path, method, headers, body, 1.0, args.concurrency))  # warm-up
            count, latencies = asyncio.run(drive(base + path, method, headers, body, args.seconds, args.concurrency))
            cuts = statistics.quantiles(latencies, n=100)
            results[label] = (count / args.seconds, cuts[49], cuts[98])
        baseline = results["GET /ping"][0]
        print(f"granian workers={args.workers}, client concurrency={args.concurrency}, {args.seconds:.0f} s a route, "
              f"{os.cpu_count()} cores shared by server, client, PostgreSQL and Redis")
        print(f"{'route':<16} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'vs /ping':>9}")
        for label, (rps, p50, p99) in results.items():
            print(f"{label:<16} {rps:>8.0f} {p50:>8.1f} {p99:>8.1f} {rps / baseline:>9.2f}")
    finally:
        if server is not None:
            server.terminate()
            server.wait(10)
        redis.terminate()
        redis.wait(10)
        pg.stop()
        subprocess.run(["rm", "-rf", str(root)], check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
