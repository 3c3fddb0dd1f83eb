"""Run host commands for the testbed, with clear errors when one fails."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence

__all__ = ["CommandError", "run", "succeeds"]


class CommandError(RuntimeError):
    """A command the testbed depends on exited non-zero."""


def run(argv: Sequence[str], *, input: str | None = None, timeout: float = 600) -> str:
    """Run argv, return its stdout; raise CommandError with its stderr on failure."""
    try:
        completed = subprocess.run(
            list(argv), input=input, capture_output=True, text=True, timeout=timeout, check=False
        )
    except FileNotFoundError as exc:
        raise CommandError(f"{argv[0]} is not installed (run `make deps`)") from exc
    if completed.returncode != 0:
        detail = (completed.stderr or completed.stdout).strip()
        raise CommandError(f"{' '.join(argv)} failed ({completed.returncode}): {detail}")
    return completed.stdout


def succeeds(argv: Sequence[str]) -> bool:
    """Whether argv exits 0 (its output is discarded)."""
    return subprocess.run(list(argv), capture_output=True, check=False).returncode == 0
