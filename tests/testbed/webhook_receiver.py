"""A webhook endpoint for the tests: keeps every delivery (headers and body) as a JSON line.

    python -m tests.testbed.webhook_receiver ADDRESS PORT FILE
"""

from __future__ import annotations

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def main() -> None:
    address, port, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            body = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode()
            with open(path, "a") as out:
                out.write(json.dumps({"headers": dict(self.headers.items()), "body": body}) + "\n")
            self.send_response(204)
            self.end_headers()

        def log_message(self, *_: object) -> None:
            pass

    ThreadingHTTPServer((address, port), Handler).serve_forever()


if __name__ == "__main__":
    main()
