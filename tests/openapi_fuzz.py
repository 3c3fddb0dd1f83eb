"""Run schemathesis's command line with every check against a served OpenAPI document, and read its verdict."""

from __future__ import annotations

import contextlib
import gc
import json
import os
import re
import subprocess
import sys
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ENDPOINT_VARIABLE", "OWN_TEAM", "SEED", "Credentials", "FuzzRun", "run_schemathesis", "schemathesis_config"]

REPO = Path(__file__).resolve().parents[1]
HOOKS = "tests.openapi_fuzz_hooks"
# The environment variable that names the session's team to the hooks (tests/openapi_fuzz_hooks.py).
OWN_TEAM = "POSTYARD_FUZZ_OWN_TEAM"
# Names the webhook endpoint positive cases use (the hooks default to loopback).
ENDPOINT_VARIABLE = "POSTYARD_FUZZ_WEBHOOK_ENDPOINT"

# A fixed seed: a failure found once is found again on the next run.
SEED = 20261130


@dataclass(frozen=True)
class Credentials:
    """What the fuzzer calls with: an API key, or a session cookie and its CSRF token."""

    api_key: str | None = None
    session: str | None = None
    csrf_token: str | None = None
    team_id: str | None = None  # the session's team: operator routes act on it alone

    @property
    def headers(self) -> dict[str, str]:
        return {"X-CSRF-Token": self.csrf_token} if self.csrf_token else {}


def _toml(value: str) -> str:
    return json.dumps(value)  # a JSON string is a TOML basic string


def schemathesis_config(credentials: Credentials) -> str:
    """schemathesis.toml: the credentials under the security scheme they belong to (so the auth checks
    know which one they remove), the hooks for rules OpenAPI cannot state, and no NUL in generated text."""
    lines = [f"hooks = {_toml(HOOKS)}", "", "[generation]", "allow-x00 = false", ""]
    if credentials.api_key:
        lines += ["[auth.openapi.apiKey]", f"bearer = {_toml(credentials.api_key)}", ""]
    if credentials.session:
        lines += ["[auth.openapi.session]", f"api_key = {_toml(credentials.session)}", ""]
    return "\n".join(lines)


@dataclass(frozen=True)
class FuzzRun:
    """One `st run`: its exit status, how many cases it sent, and what it printed."""

    label: str
    returncode: int
    cases: int
    seconds: float
    output: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    @property
    def summary(self) -> str:
        """The verdict, or the whole report when something was found."""
        if self.ok:
            return f"{self.label}: {self.cases} cases in {self.seconds:.0f} s, nothing found"
        return f"{self.label}: exit {self.returncode}\n{self.output[-20000:]}"


def _cases(output: str) -> int:
    found = re.search(r"(\d+) generated", output)
    return int(found.group(1)) if found else 0


def _seconds(output: str) -> float:
    found = re.findall(r" in ([\d.]+)s =+", output)
    return float(found[-1]) if found else 0.0


def run_schemathesis(schema_url: str, credentials: Credentials, workdir: Path, *, max_examples: int,
                     include_operation_ids: Iterable[str] = (), exclude_operation_ids: Iterable[str] = (),
                     tls_verify: str | None = None, in_process: bool = False, timeout: float = 1200) -> FuzzRun:
    """Every phase (examples, coverage, fuzzing, stateful) and every check, one worker, a fixed seed.

    `in_process` runs it in this process (so that name resolution patched here applies), else as a command.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "schemathesis.toml"
    config.write_text(schemathesis_config(credentials))
    arguments = [
        "--config-file", str(config), "run", schema_url, "--checks", "all", "--workers", "1",
        "--max-examples", str(max_examples), "--seed", str(SEED), "--generation-database", "none",
        "--no-color", "--report", "ndjson", "--report-dir", str(workdir), "--request-timeout", "30",
        # A kept-alive connection the server closes as the next request goes out fails at the network level; the
        # same request is sent again on a new one. A request that breaks the server breaks it each time.
        "--request-retries", "2",
        # How fast hypothesis generates bodies on a loaded 2-core machine, and how many of the bodies it draws
        # for a deeply nested schema (POST /emails/batch) it throws away, are not what is tested here.
        "--suppress-health-check", "too_slow,filter_too_much",
    ]
    for name, value in credentials.headers.items():
        arguments += ["--header", f"{name}: {value}"]
    for operation_id in include_operation_ids:
        arguments += ["--include-operation-id", operation_id]
    for operation_id in exclude_operation_ids:
        arguments += ["--exclude-operation-id", operation_id]
    if tls_verify is not None:
        arguments += ["--tls-verify", tls_verify]
    hook_env = {OWN_TEAM: credentials.team_id} if credentials.team_id else {}
    returncode, output = (_in_process if in_process else _as_command)(arguments, workdir, timeout, hook_env)
    (workdir / "schemathesis.txt").write_text(output)
    return FuzzRun(workdir.name, returncode, _cases(output), _seconds(output), output)


def _as_command(arguments: list[str], workdir: Path, timeout: float, hook_env: dict[str, str]) -> tuple[int, str]:
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, **hook_env, "PYTHONPATH": path}
    done = subprocess.run([sys.executable, "-m", "schemathesis.cli", *arguments], cwd=workdir, env=env,
                          capture_output=True, text=True, timeout=timeout, check=False)
    return done.returncode, done.stdout + done.stderr


def _in_process(arguments: list[str], workdir: Path, timeout: float, hook_env: dict[str, str]) -> tuple[int, str]:
    from click.testing import CliRunner
    from schemathesis.cli import schemathesis

    # schemathesis leaves its NDJSON report file, written whole, for the garbage collector to close.
    with contextlib.chdir(workdir), warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        result = CliRunner().invoke(schemathesis, arguments, env=hook_env, catch_exceptions=False)
        gc.collect()
    return result.exit_code, result.output
