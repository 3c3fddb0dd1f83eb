"""Benchmark: API-key-authenticated routes on granian with real PostgreSQL and Redis, against /ping.

    .venv/bin/python bench/api.py [--seconds 5] [--concurrency 16] [--workers 1]

Starts its own PostgreSQL 15 and Redis on loopback (as the API suite does), migrates, serves the app
with granian, and drives each route with an async HTTP client from the same machine. Prints
throughput and p50/p99 latency of `GET /domains` and `POST /api-keys` beside the trivial
`GET /ping` of the same app, and each route's throughput as a ratio of /ping's. Its figures replace its
section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import sys

import httpx
from figures import command_line, write_section
from stack import local_stack, measure, print_results, results_table, serve, unlimited_team


def main() -> int:
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("--seconds", type=float, default=5.0)
    options.add_argument("--concurrency", type=int, default=16)
    options.add_argument("--workers", type=int, default=1)
    args = options.parse_args()

    with local_stack() as stack:
        env = stack.env()
        headers = {"Authorization": f"Bearer {unlimited_team(stack, env)}"}
        with serve(env, args.workers) as base:
            for number in range(3):
                httpx.post(f"{base}/domains", json={"name": f"d{number}.bench.test"},
                           headers=headers).raise_for_status()
            results = measure(base, headers, [
                ("GET /ping", "GET", "/ping", None),
                ("GET /domains", "GET", "/domains", None),
                ("POST /api-keys", "POST", "/api-keys", {"name": "bench"}),
            ], args.seconds, args.concurrency)
    heading = (f"granian workers={args.workers}, client concurrency={args.concurrency}, {args.seconds:.0f} s a route, "
               f"{os.cpu_count()} cores shared by server, client, PostgreSQL and Redis")
    print_results(results, heading)
    write_section("api", f"{command_line()}: {heading}\n\n{results_table(results)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
