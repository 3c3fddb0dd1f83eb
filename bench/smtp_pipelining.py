"""Benchmark: what the worker's SMTP client costs per message, one command at a time against pipelined.

    .venv/bin/python bench/smtp_pipelining.py [--messages 2000] [--rounds 3]

Submits `--messages` messages (the size of the API's benchmark email, one recipient) over one session to the
SMTP sink (postyard/local_stack/smtp_sink.py, in a process of its own, offering PIPELINING as Postfix does),
three ways, interleaved over `--rounds` rounds: aiosmtplib's `sendmail` (a command per round trip, as before),
the worker's `Submitter` (MAIL, RCPT and DATA in one write, the content in a second), and chained (the next
message's envelope in the same write as the previous content: one write per message; an experiment, not what
the worker does). Reports the client's CPU and the wall time per message, the medians of the rounds.
Its figures replace its section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable

import aiosmtplib
import msgspec
from figures import command_line, markdown_table, write_section
from stack import ROOT, free_port

from app.config import Settings
from app.domain.emails.pipelining import content_bytes, envelope_commands
from app.domain.emails.submission import Submitter
from postyard.local_stack.postgres import wait_for_port

Message = tuple[str, list[str], bytes]
_BODY = b"Hello,\r\n\r\nthis is a benchmark message.\r\n" * 40


def _messages(count: int) -> list[Message]:
    return [(f"bounce+{i:032x}@send.bench.example.test", ["someone@example.org"],
             b"From: Bench <hello@bench.example.test>\r\nTo: someone@example.org\r\nSubject: Benchmark\r\n"
             + f"Message-ID: <{i}@bench.example.test>\r\n\r\n".encode() + _BODY) for i in range(count)]


def _settings(port: int) -> Settings:
    return msgspec.structs.replace(Settings.from_env({}), smtp_submission_host="127.0.0.1", smtp_submission_port=port)


async def _one_at_a_time(port: int, messages: list[Message]) -> None:
    smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False)
    await smtp.connect()
    for sender, recipients, content in messages:
        await smtp.sendmail(sender, recipients, content)
    await smtp.quit()


async def _pipelined(port: int, messages: list[Message]) -> None:
    submitter = Submitter(_settings(port))
    for sender, recipients, content in messages:
        assert (await submitter.submit(sender, recipients, content)).accepted
    await submitter.close()


async def _chained(port: int, messages: list[Message]) -> None:
    submitter = Submitter(_settings(port))
    protocol = (await submitter._connection()).pipelining  # noqa: SLF001 - the experiment reuses its session
    assert protocol is not None

    def envelope(index: int) -> list[bytes]:
        if index == len(messages):
            return []
        sender, recipients, content = messages[index]
        return envelope_commands(sender, recipients, len(content))

    commands = envelope(0)
    protocol.send(b"".join(commands))
    replies = await protocol.replies(len(commands), 60)
    for index, (_, _, content) in enumerate(messages):
        assert replies[-1].code == 354, replies
        commands = envelope(index + 1)
        protocol.send(content_bytes(content)[0] + b"".join(commands))
        (final, *replies) = await protocol.replies(1 + len(commands), 60)
        assert final.code == 250, final
    await submitter.close()


Way = Callable[[int, list[Message]], Awaitable[None]]
WAYS: dict[str, Way] = {"one command at a time (`sendmail`)": _one_at_a_time,
                        "pipelined (the worker)": _pipelined, "chained (experiment)": _chained}


def main() -> int:
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("--messages", type=int, default=2000)
    options.add_argument("--rounds", type=int, default=3)
    args = options.parse_args()

    port = free_port()
    sink = subprocess.Popen([sys.executable, "-c", "import sys, time\n"
                             "from postyard.local_stack.smtp_sink import SinkServer\n"
                             f"SinkServer({port}).start()\ntime.sleep(86400)"], cwd=ROOT)
    figures: dict[str, list[tuple[float, float]]] = {name: [] for name in WAYS}
    try:
        wait_for_port(port)
        messages = _messages(args.messages)
        for _ in range(args.rounds):
            for name, way in WAYS.items():
                cpu, wall = time.process_time(), time.perf_counter()
                asyncio.run(way(port, messages))
                figures[name].append((time.process_time() - cpu, time.perf_counter() - wall))
    finally:
        sink.kill()

    def per_message(name: str, which: int) -> float:
        return statistics.median(f[which] for f in figures[name]) * 1000 / args.messages

    baseline = per_message(next(iter(WAYS)), 0)
    rows = [[name, f"{per_message(name, 0):.3f}", f"{per_message(name, 0) / baseline:.2f}",
             f"{per_message(name, 1):.3f}"] for name in WAYS]
    table = markdown_table(["submission", "client CPU ms per message", "against one at a time",
                            "wall ms per message"], rows)
    summary = (f"{args.messages} messages of {len(messages[0][2]):,} bytes, one recipient each, over one session, "
               f"medians of {args.rounds} interleaved rounds; the sink in its own process")
    print(summary)
    print(table)
    write_section("smtp-pipelining", f"{command_line()}: {summary}\n\n{table}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
