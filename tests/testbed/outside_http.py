"""HTTPS from the testbed's outside vantage point: httpx on threads that live in its network namespace.

Each thread of the pool enters the namespace (setns) before its first request, so every socket it
opens is the outside's: an attacker elsewhere on the internet, not the test runner on the bridge. A
client may also take an address of its own in that namespace, so that what one attack leaves behind
(per-address throttles, bans) does not fall on the next.
"""

from __future__ import annotations

import ctypes
import http.cookiejar
import ipaddress
import os
import ssl
import subprocess
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, TypeVar

import httpx

__all__ = ["OutsideHttp", "extra_address", "fresh_sources"]

CLONE_NEWNET = 0x40000000
NETNS_DIR = Path("/run/netns")
T = TypeVar("T")
_libc = ctypes.CDLL(None, use_errno=True)


def _enter(netns: str) -> None:
    """Move the calling thread into the named network namespace."""
    descriptor = os.open(NETNS_DIR / netns, os.O_RDONLY)
    try:
        if _libc.setns(descriptor, CLONE_NEWNET) != 0:
            error = ctypes.get_errno()
            raise OSError(error, f"setns into {netns}: {os.strerror(error)}")
    finally:
        os.close(descriptor)


@contextmanager
def extra_address(netns: str, device: str, address: str) -> Iterator[str]:
    """One more address on the namespace's interface for as long as the block runs."""
    subprocess.run(["ip", "-n", netns, "addr", "replace", address, "dev", device], check=True)
    try:
        yield address.split("/")[0]
    finally:
        subprocess.run(["ip", "-n", netns, "addr", "del", address, "dev", device], check=False)


@contextmanager
def fresh_sources(netns: str, first: str) -> Iterator[Callable[[], str]]:
    """A new address of the namespace's eth0 for each call, from `first` up, all removed afterwards."""
    base = ipaddress.ip_address(first)
    with ExitStack() as stack:
        made: list[str] = []

        def new() -> str:
            made.append(stack.enter_context(extra_address(netns, "eth0", f"{base + len(made)}/24")))
            return made[-1]

        yield new


class OutsideHttp:
    """A stateless httpx client whose every request leaves from the namespace (optionally from one of its
    addresses)."""

    def __init__(self, netns: str, base_url: str, ca_bundle: Path, source: str | None = None,
                 headers: dict[str, str] | None = None, workers: int = 40) -> None:
        self.workers = workers
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix=f"outside-{netns}", initializer=_enter,
                                        initargs=(netns,))
        transport = httpx.HTTPTransport(verify=ssl.create_default_context(cafile=ca_bundle), local_address=source,
                                        limits=httpx.Limits(max_connections=workers))
        # No cookie jar: a test passes each session's cookie itself, so parallel logins stay apart.
        no_cookies = http.cookiejar.CookieJar(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
        self.client = httpx.Client(base_url=base_url, transport=transport, headers=headers or {}, timeout=60,
                                   cookies=no_cookies)

    def request(self, method: str, path: str, **options: Any) -> httpx.Response:
        return self._pool.submit(self.client.request, method, path, **options).result()

    def get(self, path: str, **options: Any) -> httpx.Response:
        return self.request("GET", path, **options)

    def post(self, path: str, **options: Any) -> httpx.Response:
        return self.request("POST", path, **options)

    def delete(self, path: str, **options: Any) -> httpx.Response:
        return self.request("DELETE", path, **options)

    def run(self, call: Callable[..., T], *args: Any) -> T:
        """`call(*args)` on one of the pool's threads, so the sockets it opens are the namespace's (for a request
        httpx will not send, such as a URL over its 64 kB)."""
        return self._pool.submit(call, *args).result()

    def at_once(self, calls: list[tuple[str, str, dict[str, Any]]]) -> list[httpx.Response]:
        """The calls `(method, path, options)` sent together: each waits for all to be ready, then goes."""
        if len(calls) > self.workers:
            raise ValueError(f"at most {self.workers} calls at once")
        start = threading.Barrier(len(calls))

        def call(method: str, path: str, options: dict[str, Any]) -> httpx.Response:
            start.wait(timeout=30)
            return self.client.request(method, path, **options)

        futures = [self._pool.submit(call, method, path, options) for method, path, options in calls]
        return [future.result() for future in futures]

    def close(self) -> None:
        self.client.close()
        self._pool.shutdown()
