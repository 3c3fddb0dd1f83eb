"""The rendered backup script, run against local directories: copies expire after `backup_keep_days`, here and
on the remote (a local directory stands for it: rsync treats a path without `host:` as local)."""

from __future__ import annotations

import os
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from roles import postgresql_backup
from roles.support.staging import JINJA_OPTIONS

REPO = Path(__file__).resolve().parents[2]
KEEP_DAYS = postgresql_backup.DEFAULTS["backup_keep_days"]

pytestmark = pytest.mark.skipif(not (shutil.which("rsync") and shutil.which("age-keygen")),
                                reason="needs rsync and age (make system-deps installs them)")


def _render(name: str, **data: object) -> str:
    context = postgresql_backup.backup_context(
        SimpleNamespace(**{**postgresql_backup.DEFAULTS, **data}), _recipient())
    environment = Environment(loader=FileSystemLoader(REPO / "templates"), undefined=StrictUndefined,
                              keep_trailing_newline=True, **JINJA_OPTIONS)
    return environment.get_template(name).render(context)


def _recipient() -> str:
    identity = subprocess.run(["age-keygen"], capture_output=True, text=True, check=True).stdout
    return postgresql_backup.age_recipient(identity)


def _copy(days_ago: float, database: str = "postyard") -> str:
    """The name a backup taken `days_ago` days ago has."""
    return f"{database}-{(datetime.now(UTC) - timedelta(days=days_ago)):%Y%m%dT%H%M%SZ}.dump.age"


def _touch(directory: Path, *names: str) -> None:
    for name in names:
        (directory / name).parent.mkdir(parents=True, exist_ok=True)
        (directory / name).write_bytes(b"age-encryption.org/v1\n")


def _run(tmp_path: Path, script: str, dump: str = "printf 'PGDMP stand-in dump'") -> subprocess.CompletedProcess[str]:
    """Run the script with a stand-in pg_dump running `dump` (the real age encrypts its output)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "pg_dump").write_text(f"#!/bin/sh\n{dump}\n")
    (bin_dir / "pg_dump").chmod(0o755)
    (tmp_path / "postyard-backup").write_text(script)
    return subprocess.run(["bash", str(tmp_path / "postyard-backup")], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}, check=False)


def _names(directory: Path) -> set[str]:
    return {str(p.relative_to(directory)) for p in directory.rglob("*") if p.is_file()}


@pytest.fixture
def dirs(tmp_path: Path) -> tuple[Path, Path]:
    local, remote = tmp_path / "local", tmp_path / "remote"
    local.mkdir()
    remote.mkdir()
    return local, remote


def test_the_backup_keeps_copies_younger_than_keep_days_here_and_on_the_remote(tmp_path, dirs):
    local, remote = dirs
    young, old_here, old_there, older = _copy(KEEP_DAYS - 1), _copy(KEEP_DAYS + 1), _copy(KEEP_DAYS + 0.1), _copy(60)
    _touch(local, young, old_here)
    _touch(remote, young, old_there, older)
    done = _run(tmp_path, _render("backup/postyard-backup.sh.j2", backup_dir=str(local), backup_remote=str(remote)))
    assert done.returncode == 0, done.stderr
    written = _names(local) - {young}
    assert len(written) == 1 and (local / next(iter(written))).read_bytes().startswith(b"age-encryption.org/v1")
    assert _names(local) == {young, *written}
    assert _names(remote) == {young, *written}
    assert "pruned 2 copies" in done.stdout


def test_the_remote_prune_deletes_only_this_databases_stamped_copies(tmp_path, dirs):
    local, remote = dirs
    foreign = {"notes.txt", _copy(60, "otherdb"), f"{_copy(60)}.keep", f"nested/{_copy(60)}", "postyard-old.dump.age"}
    _touch(remote, *foreign)
    done = _run(tmp_path, _render("backup/postyard-backup.sh.j2", backup_dir=str(local), backup_remote=str(remote)))
    assert done.returncode == 0, done.stderr
    assert foreign <= _names(remote) and len(_names(remote)) == len(foreign) + 1
    assert "pruned" not in done.stdout


def test_without_a_remote_the_backup_prunes_only_its_own_directory(tmp_path, dirs):
    local, _ = dirs
    _touch(local, _copy(KEEP_DAYS + 1), "notes.txt")
    script = _render("backup/postyard-backup.sh.j2", backup_dir=str(local))
    done = _run(tmp_path, script)
    assert done.returncode == 0, done.stderr
    assert "rsync" not in script and len(_names(local)) == 2 and "notes.txt" in _names(local)


def test_a_failing_dump_fails_the_run_leaves_no_partial_file_and_prunes_nothing(tmp_path, dirs):
    local, remote = dirs
    old = _copy(60)
    _touch(remote, old)
    script = _render("backup/postyard-backup.sh.j2", backup_dir=str(local), backup_remote=str(remote))
    done = _run(tmp_path, script, dump="echo 'pg_dump: connection refused' >&2; exit 1")
    assert done.returncode != 0 and _names(local) == set() and _names(remote) == {old}
