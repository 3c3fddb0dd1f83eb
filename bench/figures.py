"""Each benchmark's latest figures in docs/benchmarks.md: its own section, between its markers, replaced."""

from __future__ import annotations

import shlex
import sys
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path

__all__ = ["DOCS", "command_line", "markdown_table", "replace_section", "write_section"]

DOCS = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
INTRO = ("# Benchmarks\n\nThe latest figures, each beside its baseline from the same run and the command that "
         "produced it; each benchmark rewrites its own section.\n")


def _markers(name: str) -> tuple[str, str]:
    return f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"


def replace_section(document: str, name: str, body: str) -> str:
    """The document with the text between the section's markers replaced by `body` (the markers stay).

    A document without the section gets it at its end.
    """
    start, end = _markers(name)
    section = f"{start}\n{body.strip()}\n{end}"
    opened = document.find(start)
    if opened < 0:
        return f"{document.rstrip()}\n\n{section}\n"
    closed = document.find(end, opened)
    if closed < 0:
        raise ValueError(f"{start} has no {end} after it")
    return document[:opened] + section + document[closed + len(end):]


def write_section(name: str, body: str, path: Path = DOCS) -> None:
    """Replace the benchmark's section of the figures page (made, with its heading, if missing)."""
    document = path.read_text() if path.exists() else INTRO
    path.write_text(replace_section(document, name, body))


def command_line(argv: Sequence[str] | None = None) -> str:
    """This run's command, as the figures page shows it, with the day it ran."""
    argv = list(sys.argv if argv is None else argv)
    script = f"bench/{Path(argv[0]).name}"
    day = datetime.now(UTC).date().isoformat()
    return f"`{shlex.join(['.venv/bin/python', script, *argv[1:]])}` (run {day})"


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)
