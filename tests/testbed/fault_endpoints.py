"""Two hostile webhook endpoints for the fault test: one that reads each request and never answers, one that
answers each with 100 MB. Each counts its requests in a file (one line per request).

    python -m tests.testbed.fault_endpoints ADDRESS HANGING_PORT HUGE_PORT COUNT_FILE
"""

from __future__ import annotations

import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

__all__ = ["HUGE_BYTES", "main"]

HUGE_BYTES = 100 * 1024 * 1024
_MEGABYTE = bytes(1024 * 1024)
HANG_SECONDS = 3600


def _handler(kind: str, count_file: str, lock: threading.Lock) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with lock, open(count_file, "a") as out:
                out.write(f"{kind}\n")
            if kind == "hanging":
                time.sleep(HANG_SECONDS)  # the connection stays open, unanswered, until the client gives up
                return
            self.send_response(200)
            self.send_header("Content-Length", str(HUGE_BYTES))
            self.end_headers()
            try:
                for _ in range(HUGE_BYTES // len(_MEGABYTE)):
                    self.wfile.write(_MEGABYTE)
            except OSError:
                pass  # the client stopped reading at its cap

        def log_message(self, *_: object) -> None:
            pass

    return Handler


def main() -> None:
    address, hanging_port, huge_port, count_file = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    lock = threading.Lock()
    servers = [ThreadingHTTPServer((address, port), _handler(kind, count_file, lock))
               for kind, port in (("hanging", hanging_port), ("huge", huge_port))]
    for server in servers:
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
    threading.Event().wait()


if __name__ == "__main__":
    main()
