"""SMTP submission as a customer's application does it: STARTTLS, AUTH, then many messages a session.

    python submission_client.py HOST PORT SENDER RECIPIENT FILE MESSAGES SESSIONS

The login and its password come from the environment (BENCH_SMTP_USERNAME, BENCH_SMTP_PASSWORD).
`SESSIONS` connections share `MESSAGES` messages, each session sending one after another (aiosmtplib
does not pipeline: MAIL, RCPT, DATA and the content are a round trip each). Every message is the
file's, with a Message-ID of its own. Prints JSON: when the first session started (seconds since the
epoch), the seconds until the last message was answered, and this process's CPU seconds. A refused
message ends the run with its reply.

bench/appliance.py runs it on a mail host with the app's virtualenv, so it imports nothing else of
the repository.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import ssl
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import aiosmtplib

__all__ = ["Target", "submit", "with_message_id"]


@dataclass(frozen=True)
class Target:
    host: str
    port: int
    username: str
    password: str


def with_message_id(message: bytes, message_id: str) -> bytes:
    """The message (CRLF lines) with `message_id` as its only Message-ID; the body is untouched."""
    message = message.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    head, separator, body = message.partition(b"\r\n\r\n")
    kept, skipping = [], False
    for line in head.split(b"\r\n"):
        if line[:1] not in (b" ", b"\t"):
            skipping = line.split(b":", 1)[0].strip().lower() == b"message-id"
        if not skipping:
            kept.append(line)
    return b"\r\n".join([f"Message-ID: {message_id}".encode(), *kept]) + separator + body


def _tls_context() -> ssl.SSLContext:
    # The bench connects over loopback by address, which the host's certificate does not name; what it
    # measures is the cost of TLS, not the certificate, which the appliance's tests check.
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


async def _session(target: Target, sender: str, recipient: str, message: bytes, numbers: Iterator[int]) -> None:
    client = aiosmtplib.SMTP(hostname=target.host, port=target.port, start_tls=True, tls_context=_tls_context())
    await client.connect()
    try:
        await client.login(target.username, target.password)
        domain = sender.rpartition("@")[2]
        for _ in numbers:
            errors, _reply = await client.sendmail(sender, [recipient],
                                                   with_message_id(message, f"<{uuid.uuid4().hex}@{domain}>"))
            if errors:
                raise RuntimeError(f"refused recipients: {errors}")
        await client.quit()
    finally:
        client.close()


async def submit(target: Target, sender: str, recipient: str, message: bytes, messages: int,
                 sessions: int) -> float:
    """Submit `messages` copies over `sessions` concurrent sessions; returns the seconds they took."""
    numbers = iter(range(messages))  # shared: each session takes the next number until none is left
    started = time.monotonic()
    await asyncio.gather(*(_session(target, sender, recipient, message, numbers) for _ in range(sessions)))
    return time.monotonic() - started


def main() -> int:
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("host")
    options.add_argument("port", type=int)
    options.add_argument("sender")
    options.add_argument("recipient")
    options.add_argument("file")
    options.add_argument("messages", type=int)
    options.add_argument("sessions", type=int)
    args = options.parse_args()
    target = Target(args.host, args.port, os.environ["BENCH_SMTP_USERNAME"], os.environ["BENCH_SMTP_PASSWORD"])
    with open(args.file, "rb") as source:
        message = source.read()
    started = time.time()
    seconds = asyncio.run(submit(target, args.sender, args.recipient, message, args.messages, args.sessions))
    print(json.dumps({"started": started, "seconds": seconds, "cpu": time.process_time()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
