"""Benchmark: what the foreign keys to the rows all of a team's emails share cost `POST /emails`.

    .venv/bin/python bench/foreign_keys.py [--seconds 8] [--rounds 2] [--concurrency 16]

Every email names its team and its domain, and every event its team; PostgreSQL checks each such
insert with a `FOR KEY SHARE` lock on the row named, and concurrent requests of one team share those
locks through MultiXacts. This drives `POST /emails` from one team with `--concurrency` clients,
alternately with the foreign keys from `emails` and `email_events` to those shared rows in place and
dropped (restored `NOT VALID` between rounds, and validated at the end), and reports requests per
second, PostgreSQL's CPU per request and the MultiXact member pages PostgreSQL touched, for each. Its
figures replace its section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time

import httpx
from figures import command_line, markdown_table, write_section
from stack import Stack, drive, local_stack, postgres_cpu, serve, unlimited_team

TABLES = ("emails", "email_events")
SHARED = ("teams", "domains", "api_keys")  # rows that every email of a team, a domain or a key names


def _shared_row_keys(stack: Stack) -> list[tuple[str, str, str]]:
    """(table, constraint, definition) of each foreign key from TABLES to SHARED."""
    rows = stack.owner_sql(
        "SELECT conrelid::regclass, conname, pg_get_constraintdef(oid) FROM pg_constraint "
        f"WHERE contype = 'f' AND confrelid::regclass::text IN ({', '.join(repr(t) for t in SHARED)}) "
        f"AND conrelid::regclass::text IN ({', '.join(repr(t) for t in TABLES)}) ORDER BY 1, 2")
    return [tuple(line.split("|")) for line in rows.splitlines() if line]  # type: ignore[misc]


def _drop(stack: Stack, keys: list[tuple[str, str, str]]) -> None:
    for table, name, _ in keys:
        stack.owner_sql(f"ALTER TABLE {table} DROP CONSTRAINT {name}")


def _restore(stack: Stack, keys: list[tuple[str, str, str]], validate: bool = False) -> None:
    for table, name, definition in keys:
        stack.owner_sql(f"ALTER TABLE {table} ADD CONSTRAINT {name} {definition} NOT VALID")
        if validate:
            stack.owner_sql(f"ALTER TABLE {table} VALIDATE CONSTRAINT {name}")


def _multixact_members(stack: Stack) -> int:
    """MultiXact member pages PostgreSQL has touched since it started (pg_stat_slru)."""
    return int(stack.owner_sql(
        "SELECT blks_zeroed + blks_hit + blks_read + blks_written FROM pg_stat_slru WHERE name = 'MultiXactMember'"))


def _round(stack: Stack, base: str, headers: dict[str, str], email: dict, seconds: float,
           concurrency: int) -> tuple[float, float, float, int]:
    """(requests/s, p99 ms, PostgreSQL CPU ms per request, MultiXact member pages) of one round."""
    asyncio.run(drive(f"{base}/emails", "POST", headers, email, 1.0, concurrency))
    cpu, members = postgres_cpu(stack), _multixact_members(stack)
    count, latencies = asyncio.run(drive(f"{base}/emails", "POST", headers, email, seconds, concurrency))
    cpu, members = postgres_cpu(stack) - cpu, _multixact_members(stack) - members
    latencies.sort()
    return count / seconds, latencies[int(len(latencies) * 0.99)], cpu * 1000 / count, members


def main() -> int:
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("--seconds", type=float, default=8.0)
    options.add_argument("--rounds", type=int, default=2)
    options.add_argument("--concurrency", type=int, default=16)
    args = options.parse_args()

    figures: dict[str, list[tuple[float, float, float, int]]] = {"with": [], "without": []}
    with local_stack() as stack:
        env = stack.env(POSTYARD_LOG_LEVEL="WARNING")
        headers = {"Authorization": f"Bearer {unlimited_team(stack, env)}"}
        with serve(env, 1) as base:
            domain = httpx.post(f"{base}/domains", json={"name": "bench.example.test"}, headers=headers).json()
            stack.owner_sql(f"UPDATE domains SET status = 'verified' WHERE id = '{domain['id']}'")
            email = {"from": "Bench <hello@bench.example.test>", "to": ["someone@example.org"], "subject": "Benchmark",
                     "text": "Hello,\n\nthis is a benchmark message.\n" * 10, "html": "<p>Hello</p>" * 20}
            keys = _shared_row_keys(stack)
            print("foreign keys dropped in the rounds without:", ", ".join(f"{t}.{n}" for t, n, _ in keys))
            for number in range(args.rounds):
                for variant in ("with", "without"):
                    if variant == "without":
                        _drop(stack, keys)
                    figures[variant].append(_round(stack, base, headers, email, args.seconds, args.concurrency))
                    if variant == "without":
                        _restore(stack, keys)
                    print(f"round {number + 1}, {variant} the foreign keys: "
                          "{:.0f} req/s, p99 {:.0f} ms, PostgreSQL {:.2f} ms CPU a request, "
                          "{} MultiXact member pages".format(*figures[variant][-1]), flush=True)
                    time.sleep(1)
            _drop(stack, keys)
            _restore(stack, keys, validate=True)  # every row written without them still matches a team

    def mean(variant: str, index: int) -> float:
        values = [f[index] for f in figures[variant]]
        return sum(values) / len(values)

    rows = [[f"{variant} those foreign keys", f"{mean(variant, 0):.0f}", f"{mean(variant, 1):.0f} ms",
             f"{mean(variant, 2):.2f}", f"{mean(variant, 3):.0f}",
             f"{mean(variant, 0) / mean('with', 0):.2f}"] for variant in ("with", "without")]
    table = markdown_table(["`POST /emails`", "req/s", "p99", "PostgreSQL CPU ms a request",
                            "MultiXact member pages a round", "throughput vs with"], rows)
    heading = (f"{command_line()}: one team, {args.concurrency} clients, {args.seconds:.0f} s a round, "
               f"{args.rounds} rounds each, alternated; granian with one worker, PostgreSQL and the client on "
               f"{os.cpu_count()} cores")
    print(table)
    write_section("foreign-keys", f"{heading}\n\n{table}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
