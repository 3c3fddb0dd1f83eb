"""The archives the app runtime uploads in one piece."""

from __future__ import annotations

import subprocess
import tarfile
from io import BytesIO
from pathlib import Path

from roles.support.archives import directory_archive, skip_bytecode
from roles.support.stamps import unpack_command


def _tree(root: Path) -> Path:
    (root / "pkg" / "__pycache__").mkdir(parents=True)
    (root / "pkg" / "__init__.py").write_text("")
    (root / "pkg" / "mod.py").write_text("VALUE = 1\n")
    (root / "pkg" / "__pycache__" / "mod.cpython-311.pyc").write_bytes(b"\0")
    return root


def test_the_same_tree_gives_the_same_bytes_whatever_its_timestamps_and_modes(tmp_path):
    tree = _tree(tmp_path / "a")
    before = directory_archive(tree, skip=skip_bytecode)
    (tree / "pkg" / "mod.py").chmod(0o600)
    subprocess.run(["touch", "-d", "2001-01-01", str(tree / "pkg" / "mod.py")], check=True)
    assert directory_archive(tree, skip=skip_bytecode) == before
    (tree / "pkg" / "mod.py").write_text("VALUE = 2\n")
    assert directory_archive(tree, skip=skip_bytecode) != before


def test_the_archive_holds_root_owned_sources_without_bytecode(tmp_path):
    archive = tarfile.open(fileobj=BytesIO(directory_archive(_tree(tmp_path), skip=skip_bytecode)))
    members = {m.name: m for m in archive.getmembers()}
    assert sorted(members) == ["pkg", "pkg/__init__.py", "pkg/mod.py"]
    assert {(m.uid, m.gid, m.uname) for m in members.values()} == {(0, 0, "root")}
    assert (members["pkg"].mode, members["pkg/mod.py"].mode) == (0o755, 0o644)


def test_unpacking_replaces_the_directory_whole_and_removes_the_archive(tmp_path):
    upload = tmp_path / "app.tar"
    upload.write_bytes(directory_archive(_tree(tmp_path / "src"), skip=skip_bytecode))
    dest = tmp_path / "app"
    (dest / "stale").mkdir(parents=True)
    subprocess.run(["sh", "-c", unpack_command(str(upload), str(dest))], check=True)
    assert sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*")) == [
        "pkg", "pkg/__init__.py", "pkg/mod.py"]
    assert not upload.exists() and not (tmp_path / "app.new").exists()
