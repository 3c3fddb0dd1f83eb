"""The fake Hetzner Cloud API over HTTP on 127.0.0.1, every exchange checked against the spec."""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from tests.hetzner.fake.api import FakeApi
from tests.hetzner.fake.spec import SpecChecker, SpecMismatch
from tests.hetzner.fake.state import ApiError

__all__ = ["Fault", "FakeHetzner"]

BASE_PATH = "/v1"


@dataclass
class Fault:
    """Answer matching requests with an error; `after` applies the request first (a lost reply)."""

    method: str
    path: str  # regular expression on the path below /v1
    status: int
    code: str
    times: int = 1
    after: bool = False


class FakeHetzner:
    """Start with `with FakeHetzner(token) as fake:`; fake.endpoint is for hcloud's api_endpoint."""

    def __init__(self, token: str):
        self.token = token
        self.api = FakeApi()
        self.checker = SpecChecker()
        self.faults: list[Fault] = []
        self.mismatches: list[str] = []
        self.requests: list[tuple[str, str, int]] = []  # method, path, status
        self.authorizations: set[str] = set()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}{BASE_PATH}"

    @property
    def state(self):
        return self.api.state

    def __enter__(self) -> FakeHetzner:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def fail(self, method: str, path: str, status: int, code: str, times: int = 1, after: bool = False) -> None:
        self.faults.append(Fault(method, path, status, code, times, after))

    def created(self, kind: str | None = None) -> list[str]:
        """Paths of successful POSTs that created a resource (not actions)."""
        return [path for method, path, status in self.requests
                if method == "POST" and status == 201 and "/actions/" not in path
                and (kind is None or path.split("?")[0].rstrip("/").split("/")[1] == kind)]

    def assert_clean(self) -> None:
        assert not self.mismatches, "exchanges outside the OpenAPI description:\n" + "\n".join(self.mismatches)

    def _fault(self, method: str, path: str) -> Fault | None:
        for fault in self.faults:
            if fault.times > 0 and fault.method == method and re.search(fault.path, path):
                fault.times -= 1
                return fault
        return None

    def exchange(self, method: str, target: str, headers: dict[str, str], raw: bytes) -> tuple[int, bytes]:
        """One request in, one response out; both checked against the spec."""
        split = urlsplit(target)
        path = unquote(split.path)[len(BASE_PATH):]
        path_and_query = split.path[len(BASE_PATH):] + (f"?{split.query}" if split.query else "")
        wanted = {k: v for k, v in headers.items() if k.lower() in ("authorization", "content-type")}
        try:
            self.checker.check_request(method, path_and_query, wanted, raw or None)
        except SpecMismatch as error:
            self.mismatches.append(str(error))
            return self._reply(method, path_and_query, wanted, raw, 400, _error("invalid_input", str(error)))
        self.authorizations.add(headers.get("Authorization", ""))
        if headers.get("Authorization") != f"Bearer {self.token}":
            return self._reply(method, path_and_query, wanted, raw, 401,
                               _error("unauthorized", "unable to authenticate"))
        with self._lock:
            fault = self._fault(method, path)
            if fault and not fault.after:
                status, payload = fault.status, _error(fault.code, f"injected {fault.code}")
            else:
                status, payload = self._apply(method, path, parse_qs(split.query), raw)
                if fault:
                    status, payload = fault.status, _error(fault.code, f"injected {fault.code}")
            self.requests.append((method, path, status))
        return self._reply(method, path_and_query, wanted, raw, status, payload)

    def _apply(self, method: str, path: str, query: dict[str, list[str]], raw: bytes) -> tuple[int, Any]:
        try:
            return self.api.handle(method, path, query, json.loads(raw) if raw else None)
        except ApiError as error:
            return error.status, _error(error.code, error.message)

    def _reply(self, method, path_and_query, headers, raw, status, payload) -> tuple[int, bytes]:
        body = b"" if status == 204 else json.dumps(payload).encode()
        if status != 204:
            try:
                self.checker.check_response(method, path_and_query, headers, raw or None, status, body)
            except SpecMismatch as error:
                self.mismatches.append(str(error))
                return 500, json.dumps(_error("server_error", "fake response outside the spec")).encode()
        return status, body

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                status, body = fake.exchange(self.command, self.path, dict(self.headers), raw)
                self.send_response(status)
                if status == 429:
                    self.send_header("RateLimit-Limit", "3600")
                    self.send_header("RateLimit-Remaining", "0")
                if body:
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_DELETE = _serve

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


def _error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": {}}}
