"""A throwaway PostgreSQL 15 cluster on loopback, and the port helpers the local services share."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from app.db.roles import ROLES

__all__ = ["PG_BIN", "ROLES", "Postgres", "free_port", "wait_for_port"]

PG_BIN = Path("/usr/lib/postgresql/15/bin")


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, timeout: float = 20.0) -> None:
    """Wait until something accepts connections on the loopback port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port}")


@dataclass
class Postgres:
    """A throwaway PostgreSQL cluster, run as an unprivileged user when we are root."""

    root: Path
    port: int
    user: str | None = None

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        command = list(args)
        if self.user:
            command = ["runuser", "-u", self.user, "--", *command]
        return subprocess.run(command, check=True, capture_output=True, text=True)

    def start(self) -> None:
        data = self.root / "data"
        if os.geteuid() == 0:
            self.user = "postgres" if _user_exists("postgres") else "nobody"
            shutil.chown(self.root, self.user)
        self._run(str(PG_BIN / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "-E", "UTF8",
                  "--no-sync")
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(self.root / "log"), "-w", "start", "-o",
                  f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
                  "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200")

    def stop(self) -> None:
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.root / "data"), "-m", "immediate", "stop")

    def psql(self, sql: str, user: str = "postgres", database: str = "postgres") -> str:
        """Run SQL through psql over the unix socket."""
        result = subprocess.run(
            ["psql", "-h", str(self.root), "-p", str(self.port), "-U", user, "-d", database, "-v", "ON_ERROR_STOP=1",
             "-At", "-c", sql], check=True, capture_output=True, text=True)
        return result.stdout

    def url(self, role: str, database: str = "postyard") -> str:
        return f"postgresql+asyncpg://{role}@127.0.0.1:{self.port}/{database}"


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False
