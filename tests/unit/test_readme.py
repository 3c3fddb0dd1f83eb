"""The README stays short, every command it gives exists, and the paths, links and settings the docs name are real."""

from __future__ import annotations

import contextlib
import io
import re
import shlex
from collections.abc import Callable
from pathlib import Path

import pytest

from app.cli import main as api_main
from app.config import Settings
from postyard.cli import parser as postyard_parser

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
DOCS = sorted((REPO / "docs").glob("*.md"))
MAX_README_LINES = 250

# `make X`, `python -m postyard X`, `postyard-api X`: each with the rest of its line.
COMMAND = re.compile(r"(?:^|[\s`(/])(make|python3? -m postyard|postyard-api)(?=[\s`]|$)([^`\n|;&#]*)")
FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.DOTALL | re.MULTILINE)
INLINE = re.compile(r"`([^`\n]+)`")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
SETTING = re.compile(r"\bPOSTYARD_[A-Z0-9_]+\b")
REPO_PATH = re.compile(r"`((?:app|bench|group_data|inventory|postyard|roles|templates|tests)/[\w/.-]*)")


def code_spans(markdown: str) -> list[str]:
    """The text of every fenced block and every inline code span."""
    fenced = FENCE.findall(markdown)
    rest = FENCE.sub("", markdown)
    return fenced + INLINE.findall(rest)


def commands(markdown: str) -> list[tuple[str, list[str]]]:
    """Each command in the Markdown's code: (program, its arguments), placeholders and all."""
    found = []
    for span in code_spans(markdown):
        for program, rest in COMMAND.findall(span):
            words = shlex.split(rest.replace("...", ""))
            if program == "make" and not words:
                continue  # the program's name, as in `apt-get install make`
            found.append(("postyard" if program.startswith("python") else program, words))
    return found


def makefile_targets_and_variables() -> tuple[set[str], set[str]]:
    text = (REPO / "Makefile").read_text()
    targets: set[str] = set()
    for line in text.splitlines():
        rule = re.match(r"^([A-Za-z0-9_][A-Za-z0-9_ .-]*?)\s*:(?!=)", line)
        if rule and not line.startswith("\t"):
            targets.update(name for name in rule.group(1).split() if not name.startswith("."))
    variables = set(re.findall(r"^([A-Z_]+)\s*[?:]?=", text, re.MULTILINE)) | set(re.findall(r"\$\(([A-Z_]+)\)", text))
    return targets, variables


def cli_accepts(parse: Callable[[list[str]], object], argv: list[str]) -> bool:
    """Whether the CLI parses these arguments: argparse exits 0 on --help once it has parsed what precedes it.

    `python -m postyard` is only parsed (its `admin` passes the rest on untouched); `postyard-api` builds
    its parser inside main, which exits at --help before it reads any setting.
    """
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        try:
            parse([*argv, "--help"])
        except SystemExit as done:
            return done.code == 0
    return parse is postyard_parse


def postyard_parse(argv: list[str]) -> object:
    return postyard_parser().parse_args(argv)


def command_problem(program: str, words: list[str]) -> str | None:
    """Why the command does not exist, or None when it does."""
    if program == "make":
        targets, variables = makefile_targets_and_variables()
        for word in words:
            name, assigns, _ = word.partition("=")
            if assigns and name not in variables:
                return f"the Makefile reads no variable {name}"
            if not assigns and word not in targets:
                return f"the Makefile has no target {word}"
        return None
    if program == "postyard":
        if not cli_accepts(postyard_parse, words):
            return "python -m postyard does not accept it"
        if words[:1] == ["admin"] and not cli_accepts(api_main, words):
            return "postyard-api has no such admin command"
        return None
    return None if cli_accepts(api_main, words) else "postyard-api does not accept it"


README_COMMANDS = commands(README.read_text())


def test_the_readme_gives_commands_to_check():
    programs = {program for program, _ in README_COMMANDS}
    assert {"make", "postyard"} <= programs


@pytest.mark.parametrize(("program", "words"), README_COMMANDS, ids=lambda v: " ".join(v) if isinstance(v, list) else v)
def test_every_command_the_readme_gives_exists(program, words):
    assert command_problem(program, words) is None, f"{program} {' '.join(words)}"


@pytest.mark.parametrize(("program", "words"), [
    ("make", ["upp"]),
    ("make", ["up", "TOPOLGY=split"]),
    ("postyard", ["exposures"]),
    ("postyard", ["up", "--target", "aws"]),
    ("postyard", ["admin", "suspend-all"]),
    ("postyard-api", ["follow-postfix-logs"]),
])
def test_a_command_that_does_not_exist_is_caught(program, words):
    assert command_problem(program, words) is not None


def test_the_readme_is_under_250_lines():
    assert len(README.read_text().splitlines()) < MAX_README_LINES


@pytest.mark.parametrize("page", [README, REPO / "CHANGELOG.md", *DOCS], ids=lambda p: p.relative_to(REPO).as_posix())
def test_every_relative_link_points_at_a_file_and_heading_that_exist(page):
    broken = []
    for target in LINK.findall(page.read_text()):
        if re.match(r"^[a-z]+:", target):
            continue
        path, _, anchor = target.partition("#")
        linked = (page.parent / path) if path else page
        if not linked.exists() or (anchor and linked.suffix == ".md" and anchor not in heading_anchors(linked)):
            broken.append(target)
    assert not broken


def heading_anchors(page: Path) -> set[str]:
    """The anchors GitHub gives a page's headings: lower case, punctuation dropped, spaces as hyphens."""
    text = FENCE.sub("", page.read_text())
    return {re.sub(r"[^\w\- ]", "", title.strip().lower()).replace(" ", "-")
            for title in re.findall(r"^#+ (.+)$", text, re.MULTILINE)}


@pytest.mark.parametrize("page", [README, *DOCS], ids=lambda p: p.relative_to(REPO).as_posix())
def test_every_setting_the_docs_name_is_read_by_the_code(page):
    fields = {f"POSTYARD_{name.upper()}" for name in Settings.__struct_fields__}
    code = "\n".join(path.read_text() for top in ("app", "postyard", "roles", "tests", "inventory", "group_data")
                     for path in (REPO / top).rglob("*.py"))
    unknown = [name for name in set(SETTING.findall(page.read_text())) if name not in fields and name not in code]
    assert not unknown


@pytest.mark.parametrize("page", [README, REPO / "CHANGELOG.md", *DOCS], ids=lambda p: p.relative_to(REPO).as_posix())
def test_every_repository_path_the_docs_name_exists(page):
    named = set(REPO_PATH.findall(page.read_text()))
    assert not sorted(path for path in named if not (REPO / path).exists())
