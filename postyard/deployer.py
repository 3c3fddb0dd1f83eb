"""Run the pyinfra deploy against an inventory and report what it changed."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["DeployError", "DeployResult", "run_deploy", "parse_totals", "REPO"]

REPO = Path(__file__).resolve().parent.parent
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")
TOTALS = re.compile(r"^\s*Grand total\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s*$", re.MULTILINE)


class DeployError(RuntimeError):
    """pyinfra reported an error; its output says where."""


@dataclass(frozen=True)
class DeployResult:
    operations: int
    changed: int
    unchanged: int
    seconds: float


def parse_totals(output: str) -> tuple[int, int, int]:
    """(operations, changed, unchanged) from the "Grand total" row of pyinfra's results table."""
    found = TOTALS.findall(output)
    if not found:
        raise DeployError("pyinfra printed no results table")
    hosts, success, errors, no_change = (0 if v == "-" else int(v) for v in found[-1])
    if errors:
        raise DeployError(f"{errors} operation(s) failed")
    return hosts, success, no_change


def failure_summary(lines: list[str], context: int = 6) -> str:
    """What went wrong, from pyinfra's output: each failed operation's name, then the lines before its error."""
    failed = [i for i, line in enumerate(lines) if "Error:" in line or "ERROR" in line or "Traceback" in line]
    picked: list[str] = []
    for index in failed[:8]:
        started = next((line for line in reversed(lines[:index]) if "Starting operation:" in line), None)
        if started is not None:
            picked.append(ANSI_ESCAPE.sub("", started))
        picked += lines[max(0, index - context):index + 1] + ["    ...\n"]
    return "".join(picked) + "".join(lines[-4:])


def run_deploy(
    inventory: Path,
    env: dict[str, str] | None = None,
    echo: bool = True,
    data: dict[str, str] | None = None,
    log_path: Path | None = None,
) -> DeployResult:
    """Apply deploy.py to every host of the inventory; raise DeployError if anything failed.

    data overrides settings for this run only (pyinfra's --data); log_path keeps pyinfra's output.
    """
    started = time.monotonic()
    argv = [sys.executable, "-m", "pyinfra", str(inventory), "deploy.py", "--yes"]
    for key, value in (data or {}).items():
        argv += ["--data", f"{key}={value}"]
    lines = []
    with subprocess.Popen(
        argv, cwd=REPO, env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    ) as process:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            if echo:
                print(line, end="", flush=True)
    output = "".join(lines)
    if log_path is not None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log_path.write_text(output)
    if process.wait() != 0:
        raise DeployError(f"pyinfra exited {process.returncode}:\n{failure_summary(lines)}")
    operations, changed, unchanged = parse_totals(output)
    return DeployResult(operations, changed, unchanged, time.monotonic() - started)
