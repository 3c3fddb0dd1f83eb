"""The API unit's readiness wait (app/wait_ready.py) against granian serving HTTPS as on a host: it returns
once the API answers, and gives up after its timeout when nothing does."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from api_support import free_port

from app.host_layout import API_LIVENESS_PATH
from app.wait_ready import answers, main, wait_ready
from postyard.internal_ca import host_certificate
from postyard.secrets import SecretStore


def test_the_wait_returns_once_granian_answers_over_https_with_a_certificate_for_another_name(env, tmp_path: Path):
    # As on a host: the certificate names the public host name, and the wait asks 127.0.0.1.
    issued = host_certificate(SecretStore(tmp_path / "secrets"), "api", ["api.example.net"])
    (tmp_path / "tls.crt").write_text(issued.certificate_pem)
    (tmp_path / "tls.key").write_text(issued.key_pem)
    port = free_port()
    started = time.monotonic()
    server = subprocess.Popen(
        [sys.executable, "-m", "granian", "--interface", "asgi", "--factory", "--host", "127.0.0.1", "--port",
         str(port), "--workers", "1", "--no-ws", "--ssl-certificate", str(tmp_path / "tls.crt"),
         "--ssl-keyfile", str(tmp_path / "tls.key"), "app.asgi:create_app"],
        env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        waited = wait_ready(port, timeout=30)
        print(f"granian answered {API_LIVENESS_PATH} over HTTPS {time.monotonic() - started:.1f} s after its start")
        assert waited is not None and answers(port)
    finally:
        server.terminate()
        server.wait(10)


def test_the_wait_gives_up_after_its_timeout_when_nothing_answers(capsys):
    started = time.monotonic()
    status = main(["--port", str(free_port()), "--timeout", "1"])
    assert status == 1 and 1 <= time.monotonic() - started < 5
    assert "did not answer /health/live" in capsys.readouterr().err
