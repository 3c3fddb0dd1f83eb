"""Benchmark: what settling an email costs the worker, the log follower and PostgreSQL, per email.

    .venv/bin/python bench/settle_cost.py [--emails 2000] [--worker-concurrency 4]

Starts its own PostgreSQL 15 (durable: fsync and synchronous commit on, autovacuum off so that only the
measured processes write), Redis, an SMTP sink standing in for Postfix and the app on granian; queues
`--emails` emails through `POST /emails/batch`, then runs the real `postyard-api worker` process until the
outbox is empty, and pipes the Postfix log lines of those emails (the sink's `cleanup` and `qmgr` lines and
an `smtp` delivery line each) into the real `postyard-api follow-postfix-log` process. For each of the two it
reports, per email: committed transactions (`pg_stat_database.xact_commit`, a pooled connection's ping
included), those that wrote (transaction ids assigned: each a durable commit), WAL bytes, row versions of
`emails` written (updates, and how many of them were HOT), and CPU ms of the process and of PostgreSQL.
Its figures replace its section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass

import httpx
from figures import command_line, markdown_table, write_section
from stack import ROOT, SinkServer, Stack, free_port, local_stack, postgres_cpu, serve, unlimited_team

from postyard.local_stack.postgres import PG_BIN


@dataclass(frozen=True)
class Counters:
    """PostgreSQL's counters at one moment, and the CPU its processes have used (exited backends included)."""

    commits: int
    writes: int
    wal: int
    updates: int
    hot_updates: int
    cpu: float

    def __sub__(self, other: Counters) -> Counters:
        return Counters(*(getattr(self, f) - getattr(other, f) for f in self.__dataclass_fields__))


def _durable(stack: Stack) -> None:
    """Restart the throwaway cluster durable, as deployed (it starts without fsync), and without autovacuum."""
    pg = stack.pg
    pg._run(str(PG_BIN / "pg_ctl"), "-D", str(pg.root / "data"), "-l", str(pg.root / "log"), "-w", "restart",
            "-m", "fast", "-o",
            f"-p {pg.port} -k {pg.root} -c listen_addresses=127.0.0.1 -c fsync=on -c synchronous_commit=on "
            "-c full_page_writes=on -c autovacuum=off -c max_connections=200")
    assert pg.psql("SHOW fsync").strip() == "on"


_own_commits = 0  # the harness's own queries, one transaction each, taken off the figures


def _sql(stack: Stack, sql: str) -> str:
    global _own_commits
    _own_commits += 1
    return stack.owner_sql(sql)


def _counters(stack: Stack) -> Counters:
    time.sleep(1.5)  # backends report their statistics at most once a second, and when they exit
    row = _sql(stack, "SELECT d.xact_commit, pg_snapshot_xmax(pg_current_snapshot()), pg_current_wal_lsn() - '0/0', "
                      "t.n_tup_upd, t.n_tup_hot_upd "
                      "FROM pg_stat_database d, pg_stat_user_tables t "
                      "WHERE d.datname = 'postyard' AND t.relname = 'emails'")
    commits, writes, wal, updates, hot = (int(float(v)) for v in row.split("|"))
    return Counters(commits - _own_commits, writes, wal, updates, hot, postgres_cpu(stack))


def _process_cpu(proc: subprocess.Popen) -> float:
    """Wait for the process; the CPU seconds it used."""
    _, _, usage = os.wait4(proc.pid, 0)
    proc.returncode = 0
    return usage.ru_utime + usage.ru_stime


def _queue(base: str, headers: dict[str, str], stack: Stack, emails: int) -> None:
    domain = httpx.post(f"{base}/domains", json={"name": "bench.example.test"}, headers=headers).json()
    stack.owner_sql(f"UPDATE domains SET status = 'verified' WHERE id = '{domain['id']}'")
    email = {"from": "Bench <hello@bench.example.test>", "to": ["someone@example.org"], "subject": "Benchmark",
             "text": "Hello,\n\nthis is a benchmark message.\n" * 10, "html": "<p>Hello</p>" * 20}
    with httpx.Client(headers=headers, timeout=60) as client:
        for start in range(0, emails, 100):
            response = client.post(f"{base}/emails/batch", json=[email] * min(100, emails - start))
            response.raise_for_status()


def _outstanding(stack: Stack) -> int:
    return int(_sql(stack, "SELECT count(*) FROM emails WHERE state IN ('queued', 'sending')"))


def _run_worker(env: dict[str, str], stack: Stack) -> tuple[float, float]:
    """The worker process until the outbox is empty: (its CPU seconds, seconds from start to empty)."""
    started = time.perf_counter()
    worker = subprocess.Popen([sys.executable, "-m", "app.cli", "worker"], env={**os.environ, **env}, cwd=ROOT)
    while _outstanding(stack):
        time.sleep(0.1)
    drained = time.perf_counter() - started
    worker.send_signal(signal.SIGTERM)
    return _process_cpu(worker), drained


def _log_lines(sink: SinkServer, stack: Stack) -> list[str]:
    """What Postfix logs of the emails: the sink's cleanup and qmgr lines, and a delivery line each."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())
    rows = _sql(stack, "SELECT queue_id, recipients[1] FROM emails WHERE queue_id IS NOT NULL").splitlines()
    deliveries = [f"{stamp} mail postfix/smtp[4200]: {queue_id}: to=<{to}>, relay=mx.example.org[203.0.113.25]:25, "
                  "delay=1.2, delays=0.05/0.01/0.6/0.54, dsn=2.0.0, status=sent (250 2.0.0 OK)"
                  for queue_id, to in (row.split("|") for row in rows)]
    with sink.sink.lock:
        return [*sink.sink.log_lines, *deliveries]


def _run_follower(env: dict[str, str], lines: list[str]) -> float:
    """The log follower process over the lines on its stdin, to their end; its CPU seconds."""
    follower = subprocess.Popen([sys.executable, "-m", "app.cli", "follow-postfix-log"], env={**os.environ, **env},
                                cwd=ROOT, stdin=subprocess.PIPE)
    assert follower.stdin is not None
    follower.stdin.write("".join(f"{line}\n" for line in lines).encode())
    follower.stdin.close()
    return _process_cpu(follower)


def _row(name: str, spent: Counters, process_cpu: float, emails: int) -> list[str]:
    hot = f"{spent.hot_updates / spent.updates:.0%}" if spent.updates else "-"
    return [name, f"{spent.commits / emails:.3f}", f"{spent.writes / emails:.3f}", f"{spent.wal / emails:,.0f}",
            f"{spent.updates / emails:.2f}", hot, f"{process_cpu * 1000 / emails:.2f}",
            f"{spent.cpu * 1000 / emails:.2f}"]


def main() -> int:
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("--emails", type=int, default=2000)
    options.add_argument("--worker-concurrency", type=int, default=4)
    options.add_argument("--fillfactor", type=int, help="set on `emails` before the emails are queued")
    args = options.parse_args()

    sink = SinkServer(free_port())
    sink.start()
    try:
        with local_stack() as stack:
            _durable(stack)
            if args.fillfactor:
                stack.owner_sql(f"ALTER TABLE emails SET (fillfactor = {args.fillfactor})")
            env = stack.env(POSTYARD_SMTP_SUBMISSION_PORT=str(sink.port),
                            POSTYARD_WORKER_CONCURRENCY=str(args.worker_concurrency),
                            POSTYARD_WORKER_POLL_INTERVAL="60")
            headers = {"Authorization": f"Bearer {unlimited_team(stack, env)}"}
            with serve(env, 1) as base:
                _queue(base, headers, stack, args.emails)
            start_cpu = _run_follower(env, [])  # what a process's start alone costs
            before = _counters(stack)
            worker_cpu, drained = _run_worker(env, stack)
            after_worker = _counters(stack)
            follower_cpu = _run_follower(env, _log_lines(sink, stack))
            after_follower = _counters(stack)
            delivered = int(stack.owner_sql("SELECT count(*) FROM emails WHERE last_event = 'delivered'"))
    finally:
        sink.stop()

    rows = [_row("worker", after_worker - before, worker_cpu, args.emails),
            _row("log follower", after_follower - after_worker, follower_cpu, args.emails)]
    table = markdown_table(["process", "transactions", "of them writing (durable commits)", "WAL bytes",
                            "`emails` row versions", "of them HOT", "process CPU ms", "PostgreSQL CPU ms"], rows)
    table_options = f", `emails` with fillfactor {args.fillfactor}" if args.fillfactor else ""
    summary = (f"{args.emails} emails, worker concurrency {args.worker_concurrency}{table_options}: "
               f"drained in {drained:.1f} s ({args.emails / drained:.0f} emails/s, the worker's start included); "
               f"{delivered} marked delivered by the follower; per email, each process's start included (the "
               f"follower's alone: {start_cpu * 1000:.0f} ms of CPU); "
               f"{os.cpu_count()} cores shared by all")
    print(summary)
    print(table)
    write_section("settle", f"{command_line()}: {summary}\n\n{table}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
