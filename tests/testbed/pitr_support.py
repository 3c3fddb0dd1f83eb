"""The restore drills' pieces: a batch of emails through the API, a host's clock, the API back after a restore."""

from __future__ import annotations

import time
from datetime import datetime

import httpx

from postyard.inventory_hosts import InfraHost
from postyard.ssh import ssh_run

__all__ = ["API_BACK_WITHIN", "BATCH", "host_time", "send_batch", "status_once_back"]

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
