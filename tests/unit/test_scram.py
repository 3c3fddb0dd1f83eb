"""SCRAM verifiers made here are the ones PostgreSQL makes: a real server, given only the verifier, accepts the
password over TCP with scram-sha-256 and refuses another."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from postyard.local_stack.postgres import PG_BIN, free_port
from roles.support.scram import scram_verifier

PASSWORD = "s3cret-Pass_word"


@pytest.fixture(scope="module")
def scram_server() -> Iterator[int]:
    """A throwaway cluster that asks TCP clients for a SCRAM password."""
    root = Path(tempfile.mkdtemp(prefix="postyard-scram-"))
    user = "postgres" if os.geteuid() == 0 else None
    run = (lambda *a: subprocess.run(["runuser", "-u", user, "--", *a], check=True, capture_output=True)) if user \
        else (lambda *a: subprocess.run(list(a), check=True, capture_output=True))
    if user:
        shutil.chown(root, user)
    port = free_port()
    run(str(PG_BIN / "initdb"), "-D", f"{root}/data", "-U", "postgres", "--auth-local=trust",
        "--auth-host=scram-sha-256", "--no-sync")
    run(str(PG_BIN / "pg_ctl"), "-D", f"{root}/data", "-l", f"{root}/log", "-w", "start", "-o",
        f"-p {port} -k {root} -c listen_addresses=127.0.0.1")
    try:
        subprocess.run(["psql", "-h", str(root), "-p", str(port), "-U", "postgres", "-XAtc",
                        f"CREATE ROLE scram_probe LOGIN PASSWORD '{scram_verifier(PASSWORD, b'salt-for-a-test!')}'"],
                       check=True, capture_output=True)
        yield port
    finally:
        run(str(PG_BIN / "pg_ctl"), "-D", f"{root}/data", "-m", "immediate", "stop")
        shutil.rmtree(root, ignore_errors=True)


def _login(port: int, password: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["psql", f"postgresql://scram_probe:{password}@127.0.0.1:{port}/postgres", "-XAtc",
                           "SELECT 1"], capture_output=True, text=True, check=False)


def test_postgresql_accepts_the_password_of_a_verifier_made_here(scram_server):
    accepted = _login(scram_server, PASSWORD)
    assert accepted.stdout.strip() == "1", accepted.stderr


def test_postgresql_refuses_another_password(scram_server):
    refused = _login(scram_server, PASSWORD + "x")
    assert refused.returncode != 0 and "password authentication failed" in refused.stderr


def test_non_ascii_passwords_are_refused():
    with pytest.raises(ValueError):
        scram_verifier("pässword", b"0123456789abcdef")
