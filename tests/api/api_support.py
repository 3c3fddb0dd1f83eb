"""Servers the API suite starts for itself beside postyard.local_stack: Redis and a small authoritative DNS server."""

from __future__ import annotations

import contextlib
import os
import socketserver
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset
import httpx

from postyard.local_stack.postgres import ROLES, Postgres, free_port, wait_for_port

__all__ = ["ROLES", "DnsServer", "Postgres", "Zone", "free_port", "granian_app", "wait_for_port"]

@dataclass
class Zone:
    """Records served by the DNS stub: (lowercase name, type) -> rdata texts."""

    records: dict[tuple[str, str], list[str]] = field(default_factory=dict)

    def add(self, name: str, rdtype: str, value: str) -> None:
        """Add one value; like DNS rrsets, a name and type hold each value once."""
        values = self.records.setdefault((name.lower().rstrip("."), rdtype.upper()), [])
        if value not in values:
            values.append(value)

    @staticmethod
    def _rdata(record: dict) -> str:
        if record["type"] == "TXT":
            value = record["value"]
            return " ".join(f'"{value[i:i + 255]}"' for i in range(0, len(value), 255))
        if record["type"] == "MX":
            return f"{record['priority']} {record['value']}."
        return f"{record['value']}."

    def publish(self, record: dict) -> None:
        """Publish one record as the API describes it (name, type, value, priority)."""
        self.add(record["name"], record["type"], self._rdata(record))

    def withdraw(self, record: dict) -> None:
        """Remove a record published with `publish`."""
        self.records[(record["name"].lower().rstrip("."), record["type"].upper())].remove(self._rdata(record))


class DnsServer:
    """An authoritative UDP DNS server on loopback answering from a Zone."""

    def __init__(self, zone: Zone) -> None:
        self.zone = zone
        zone_ref = zone

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                data, sock = self.request
                query = dns.message.from_wire(data)
                response = dns.message.make_response(query)
                response.flags |= 0x0400  # authoritative
                question = query.question[0]
                name = question.name.to_text().rstrip(".").lower()
                rdtype = dns.rdatatype.to_text(question.rdtype)
                values = zone_ref.records.get((name, rdtype))
                if values:
                    response.answer.append(dns.rrset.from_text_list(question.name, 60, "IN", rdtype, values))
                elif not any(n == name for n, _ in zone_ref.records):
                    response.set_rcode(dns.rcode.NXDOMAIN)
                sock.sendto(response.to_wire(), self.client_address)

        self.server = socketserver.ThreadingUDPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@contextlib.contextmanager
def granian_app(env: dict[str, str]) -> Iterator[str]:
    """The app served by granian on a loopback port, as in production; yields its base URL once healthy."""
    port = free_port()
    env = {**env, "POSTYARD_PUBLIC_URL": f"http://127.0.0.1:{port}"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "granian", "--interface", "asgi", "--factory", "--host", "127.0.0.1", "--port",
         str(port), "--workers", "1", "--no-ws", "app.asgi:create_app"],
        env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/health").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)
