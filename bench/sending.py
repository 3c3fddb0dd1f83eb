"""Benchmark: POST /emails on granian with real PostgreSQL and Redis beside /ping, and the worker's drain rate.

    .venv/bin/python bench/sending.py [--seconds 5] [--concurrency 16] [--workers 1] [--worker-concurrency 4]

Starts its own PostgreSQL 15, Redis and an SMTP sink (aiosmtpd, answering like Postfix) on loopback,
migrates, serves the app with granian, and drives `GET /ping` and `POST /emails` with an async HTTP
client from the same machine (throughput, p50/p99 latency, ratio to /ping). Then it runs one
`postyard-api worker` process against the queued emails and reports how many it hands to the sink
per second (from its first submission) until the outbox is empty. Its figures replace its section of
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

import httpx
from figures import command_line, write_section
from stack import (
    ROOT,
    SinkServer,
    Stack,
    free_port,
    local_stack,
    measure,
    print_results,
    results_table,
    serve,
    unlimited_team,
)


def _queued(stack: Stack) -> int:
    return int(stack.owner_sql("SELECT count(*) FROM emails WHERE state IN ('queued', 'sending')"))


def main() -> int:
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("--seconds", type=float, default=5.0)
    options.add_argument("--concurrency", type=int, default=16)
    options.add_argument("--workers", type=int, default=1)
    options.add_argument("--worker-concurrency", type=int, default=4)
    args = options.parse_args()

    sink = SinkServer(free_port())
    sink.start()
    try:
        with local_stack() as stack:
            env = stack.env(
                POSTYARD_SMTP_SUBMISSION_PORT=str(sink.port),
                POSTYARD_WORKER_CONCURRENCY=str(args.worker_concurrency),
                POSTYARD_WORKER_POLL_INTERVAL="0.2",
            )
            headers = {"Authorization": f"Bearer {unlimited_team(stack, env)}"}
            with serve(env, args.workers) as base:
                domain = httpx.post(f"{base}/domains", json={"name": "bench.example.test"}, headers=headers).json()
                stack.owner_sql(f"UPDATE domains SET status = 'verified' WHERE id = '{domain['id']}'")
                email = {"from": "Bench <hello@bench.example.test>", "to": ["someone@example.org"],
                         "subject": "Benchmark", "text": "Hello,\n\nthis is a benchmark message.\n" * 10,
                         "html": "<p>Hello</p>" * 20, "tags": [{"name": "kind", "value": "bench"}]}
                results = measure(base, headers, [
                    ("GET /ping", "GET", "/ping", None),
                    ("POST /emails", "POST", "/emails", email),
                ], args.seconds, args.concurrency)

            backlog = _queued(stack)
            worker = subprocess.Popen([sys.executable, "-m", "app.cli", "worker"], env={**os.environ, **env}, cwd=ROOT)
            try:
                while not sink.sink.messages:  # the worker process is starting
                    time.sleep(0.01)
                started, first = time.perf_counter(), len(sink.sink.messages)
                while _queued(stack):
                    time.sleep(0.1)
                drained = time.perf_counter() - started
                backlog -= first
            finally:  # before the database goes away under it
                worker.terminate()
                worker.wait(10)
    finally:
        sink.stop()

    heading = (f"granian workers={args.workers}, client concurrency={args.concurrency}, {args.seconds:.0f} s a route, "
               f"{os.cpu_count()} cores shared by server, client, PostgreSQL, Redis and the SMTP sink")
    worker = (f"worker (concurrency {args.worker_concurrency}): {backlog} emails into the SMTP sink in {drained:.1f} s "
              f"once started: {backlog / drained:.0f} emails/s (sink received {len(sink.sink.messages)} in all)")
    print_results(results, heading)
    print(worker)
    write_section("sending", f"{command_line()}: {heading}\n\n{results_table(results)}\n\n{worker}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
