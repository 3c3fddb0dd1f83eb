"""A webhook endpoint on loopback, and delivering what the dispatcher has queued, for the API suite."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from app.domain.webhooks.dispatcher import Dispatcher

__all__ = ["Receiver", "deliver_all"]


@dataclass
class Receiver:
    """An HTTP endpoint on loopback that records requests and answers with the next queued status."""

    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    url: str = ""

    def serve(self) -> ThreadingHTTPServer:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["content-length"]))
                receiver.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(receiver.statuses.pop(0) if receiver.statuses else 200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
        return server


async def deliver_all(dispatcher: Dispatcher, rounds: int = 1) -> None:
    """Deliver everything due, `rounds` times with a pause between (retries come due)."""
    for _ in range(rounds):
        while await dispatcher.deliver_once():
            pass
        await asyncio.sleep(0.15)
