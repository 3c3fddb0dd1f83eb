"""Benchmark: POST /emails on granian with real PostgreSQL and Redis beside /ping, and the worker's drain rate.

    .venv/bin/python bench/sending.py [--seconds 5] [--concurrency 16] [--workers 1] [--worker-concurrency 4]

Starts its own PostgreSQL 15, Redis and an SMTP sink (aiosmtpd, answering like Postfix) on loopback,
migrates, serves the app with granian, and drives `GET /ping` and `POST /emails` with an async HTTP
client from the same machine (throughput, p50/p99 latency, ratio to /ping). Then it runs one
`postyard-api worker` process against the queued emails and reports how many it hands to the sink
per second (from its first submission) until the outbox is empty.
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
from api import drive  # noqa: E402 - bench/api.py, this script's directory
from smtp_sink import SinkServer  # noqa: E402


def _owner(pg: Postgres, sql: str) -> str:
    return pg.psql(sql, user="postyard_owner", database="postyard").strip()


def _queued(pg: Postgres) -> int:
    return int(_owner(pg, "SELECT count(*) FROM emails WHERE state IN ('queued', 'sending')"))


def main() -> int:
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("--seconds", type=float, default=5.0)
    options.add_argument("--concurrency", type=int, default=16)
    options.add_argument("--workers", type=int, default=1)
    options.add_argument("--worker-concurrency", type=int, default=4)
    args = options.parse_args()

    root = Path(tempfile.mkdtemp(prefix="postyard-bench-"))
    os.chmod(root, 0o755)
    pg = Postgres(root=root, port=free_port())
    redis_port = free_port()
    pg.start()
    redis = subprocess.Popen(["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
                              "--appendonly", "no"], stdout=subprocess.DEVNULL)
    sink = SinkServer(free_port())
    sink.start()
    server = worker = None
    try:
        pg.psql("".join(f"CREATE ROLE {r} LOGIN;" for r in ROLES))
        pg.psql("CREATE DATABASE postyard OWNER postyard_owner;")
        migrate.upgrade(pg.url("postyard_owner"))
        wait_for_port(redis_port)
        env = {
            "POSTYARD_DATABASE_URL": pg.url("postyard_app"),
            "POSTYARD_MIGRATION_DATABASE_URL": pg.url("postyard_owner"),
            "POSTYARD_REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
            "POSTYARD_DATA_KEYS": f"bench:{base64.b64encode(os.urandom(32)).decode()}",
            "POSTYARD_LOG_LEVEL": "WARNING",
            "POSTYARD_SMTP_SUBMISSION_PORT": str(sink.port),
            "POSTYARD_WORKER_CONCURRENCY": str(args.worker_concurrency),
            "POSTYARD_WORKER_POLL_INTERVAL": "0.2",
        }
        settings = Settings.from_env(env)
        team_id, key = asyncio.run(create_team(settings, "bench"))
        _owner(pg, f"UPDATE teams SET rate_limit = 100000000, api_key_rate_limit = 100000000 WHERE id = '{team_id}'")
        port = free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "granian", "--interface", "asgi", "--factory", "--host", "127.0.0.1", "--port",
             str(port), "--workers", str(args.workers), "--no-ws", "--log-level", "warning", "app.asgi:create_app"],
            env={**os.environ, **env}, cwd=ROOT)
        wait_for_port(port)
        base = f"http://127.0.0.1:{port}"
        headers = {"Authorization": f"Bearer {key}"}
        domain = httpx.post(f"{base}/domains", json={"name": "bench.example.test"}, headers=headers).json()
        _owner(pg, f"UPDATE domains SET status = 'verified' WHERE id = '{domain['id']}'")
        email = {"from": "Bench <hello@bench.example.test>", "to": ["someone@example.org"], "subject": "Benchmark",
                 "text": "Hello,\n\nthis is a benchmark message.\n" * 10, "html": "<p>Hello</p>" * 20,
                 "tags": [{"name": "kind", "value": "bench"}]}
        routes = [("GET /ping", "GET", "/ping", None), ("POST /emails", "POST", "/emails", email)]
        results: dict[str, tuple[float, float, float]] = {}
        for label, method, path, body in routes:
            asyncio.run(drive(base + path, method, headers, body, 1.0, args.concurrency))  # warm-up
            count, latencies = asyncio.run(drive(base + path, method, headers, body, args.seconds, args.concurrency))
            cuts = statistics.quantiles(latencies, n=100)
            results[label] = (count / args.seconds, cuts[49], cuts[98])
        server.terminate()
        server.wait(10)
        server = None

        backlog = _queued(pg)
        worker = subprocess.Popen([sys.executable, "-m", "app.cli", "worker"], env={**os.environ, **env}, cwd=ROOT)
        while not sink.sink.messages:  # the worker process is starting
            time.sleep(0.01)
        started, first = time.perf_counter(), len(sink.sink.messages)
        while _queued(pg):
            time.sleep(0.1)
        drained = time.perf_counter() - started
        backlog -= first

        baseline = results["GET /ping"][0]
        print(f"granian workers={args.workers}, client concurrency={args.concurrency}, {args.seconds:.0f} s a route, "
              f"{os.cpu_count()} cores shared by server, client, PostgreSQL, Redis and the SMTP sink")
        print(f"{'route':<16} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'vs /ping':>9}")
        for label, (rps, p50, p99) in results.items():
            print(f"{label:<16} {rps:>8.0f} {p50:>8.1f} {p99:>8.1f} {rps / baseline:>9.2f}")
        print(f"worker (concurrency {args.worker_concurrency}): {backlog} emails into the SMTP sink in {drained:.1f} s "
              f"once started: {backlog / drained:.0f} emails/s (sink received {len(sink.sink.messages)} in all)")
    finally:
        for proc in (server, worker):
            if proc is not None:
                proc.terminate()
                proc.wait(10)
        sink.stop()
        redis.terminate()
        redis.wait(10)
        pg.stop()
        subprocess.run(["rm", "-rf", str(root)], check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
