"""The restore drills' pieces: a batch of emails through the API, a host's clock, the API back after a restore."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

import httpx

from postyard.inventory_hosts import InfraHost
from postyard.ssh import ssh_run

__all__ = ["API_BACK_WITHIN", "BATCH", "host_time", "restore_between_two_batches", "send_batch", "status_once_back"]

T = TypeVar("T")

BATCH = 3
# From the restore's end until the API reads the restored cluster (its pools reconnect).
API_BACK_WITHIN = 60.0


def send_batch(client: httpx.Client, domain: str, label: str) -> list[str]:
    emails = [{"from": f"drill@{domain}", "to": [f"inbox{n}@{domain}"], "subject": f"{label} {n}", "text": label}
              for n in range(BATCH)]
    return [item["id"] for item in client.post("/emails/batch", json=emails).raise_for_status().json()["data"]]


def host_time(host: InfraHost) -> datetime:
    return datetime.fromisoformat(ssh_run(host, ["date", "-u", "+%Y-%m-%dT%H:%M:%S.%6NZ"]).strip())


def status_once_back(client: httpx.Client, email_id: str) -> int:
    deadline = time.monotonic() + API_BACK_WITHIN
    while True:
        try:
            status = client.get(f"/emails/{email_id}").status_code
        except httpx.TransportError:
            status = 0
        if status in (200, 404) or time.monotonic() > deadline:
            return status
        time.sleep(0.5)


def restore_between_two_batches(client: httpx.Client, domain: str, clock: InfraHost,
                                restore: Callable[[datetime], T], clean_up: Callable[[T], None]) -> tuple[float, float]:
    """Two batches of emails, a restore to a time between them (read on `clock`), then the first batch read
    back through the API, the second gone and a new batch taken; clean_up gets what the restore returned.
    Returns the restore's seconds and the seconds until the API read the restored cluster."""
    first = send_batch(client, domain, "first")
    time.sleep(1)
    between = host_time(clock)
    time.sleep(1)
    second = send_batch(client, domain, "second")
    started = time.monotonic()
    kept = restore(between)
    restored = time.monotonic()
    try:
        assert [status_once_back(client, email_id) for email_id in first] == [200] * BATCH
        assert [client.get(f"/emails/{email_id}").status_code for email_id in second] == [404] * BATCH
        back = time.monotonic()
        # the appliance takes new mail on the restored cluster
        assert len(send_batch(client, domain, "after")) == BATCH
    finally:
        clean_up(kept)
    return restored - started, back - restored
