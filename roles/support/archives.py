"""A directory as one tar archive whose bytes depend only on its files' names and contents.

Uploading a tree file by file costs a round trip per file and directory on every deploy just to
find nothing changed; one archive, unpacked once per digest (roles/support/stamps.py), costs none.
"""

from __future__ import annotations

import tarfile
from collections.abc import Callable
from io import BytesIO
from pathlib import Path, PurePath

__all__ = ["directory_archive", "skip_bytecode"]


def skip_bytecode(relative: PurePath) -> bool:
    return "__pycache__" in relative.parts or relative.suffix == ".pyc"


def directory_archive(directory: Path, skip: Callable[[PurePath], bool] = lambda _path: False) -> bytes:
    """The files and directories under `directory`, in name order, owned by root, mode 644 (755 for
    directories), without timestamps: the same tree always gives the same bytes."""
    buffer = BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as archive:
        for path in sorted(directory.rglob("*")):
            relative = path.relative_to(directory)
            if skip(relative) or not (path.is_file() or path.is_dir()):
                continue
            info = archive.gettarinfo(str(path), arcname=relative.as_posix())
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            info.mtime = 0
            info.mode = 0o755 if info.isdir() else 0o644
            if info.isdir():
                archive.addfile(info)
            else:
                with path.open("rb") as content:
                    archive.addfile(info, content)
    return buffer.getvalue()
