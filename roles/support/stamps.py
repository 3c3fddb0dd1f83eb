"""Commands that run until they succeed once for a given input, then not again.

A stamp file on the host records the input (a digest) a command last succeeded for: a failed run
leaves no stamp, so the next deploy tries again; an unchanged input reports no change. The stamp is
read before anything runs, so an applied input costs the deploy no other round trip.
"""

from __future__ import annotations

import hashlib
import shlex
from io import BytesIO, StringIO
from pathlib import Path

from pyinfra import host
from pyinfra.api.operation import OperationMeta
from pyinfra.facts.files import Sha1File
from pyinfra.operations import files, server

__all__ = ["run_once_for", "run_with_file_once_for", "unpack_once_for", "unpack_command"]


def _stamp_content(digest: str) -> str:
    return digest + "\n"


def _applied(stamp: str, digest: str) -> bool:
    return host.get_fact(Sha1File, path=stamp) == hashlib.sha1(_stamp_content(digest).encode()).hexdigest()


def run_once_for(name: str, command: str, stamp: str, digest: str) -> OperationMeta:
    return _run_unless(_applied(stamp, digest), name, command, stamp, digest)


def _run_unless(done: bool, name: str, command: str, stamp: str, digest: str) -> OperationMeta:
    return server.shell(
        name=name,
        commands=[f"{command} && printf %s {shlex.quote(_stamp_content(digest))} > {stamp}"],
        _if=lambda: not done,
    )


def unpack_command(archive: str, dest: str) -> str:
    """Unpack a tar archive as the directory dest, replacing it whole, then remove the archive."""
    a, d, new = shlex.quote(archive), shlex.quote(dest), shlex.quote(f"{dest}.new")
    return (f"rm -rf {new} && mkdir -m 755 {new} && tar -x -m --no-same-owner -f {a} -C {new} "
            f"&& rm -rf {d} && mv {new} {d} && rm -f {a}")


def unpack_once_for(
    name: str, archive: Path | bytes, dest: str, stamp: str, digest: str, then: str | None = None,
) -> OperationMeta:
    """Upload the tar archive, unpack it as dest and run `then` (if any), once per digest: a tree
    of files costs one round trip on a deploy that changes nothing, not one per file."""
    done = _applied(stamp, digest)
    uploaded = f"{dest}.tar"
    src = BytesIO(archive) if isinstance(archive, bytes) else str(archive)
    files.put(name=f"Upload {name}", src=src, dest=uploaded, mode="600", _if=lambda: not done)
    command = unpack_command(uploaded, dest) + (f" && {then}" if then else "")
    return _run_unless(done, f"Unpack {name}", command, stamp, digest)


def run_with_file_once_for(name: str, content: str, path: str, command: str, stamp: str,
                           owner: str = "root") -> OperationMeta:
    """Upload content as path (mode 600), run command, then remove the file: once per content. A failed run
    leaves the file for the next deploy's try."""
    digest = hashlib.sha256(content.encode()).hexdigest()
    done = _applied(stamp, digest)
    files.put(name=f"Upload {path}", src=StringIO(content), dest=path, user=owner, group=owner, mode="600",
              _if=lambda: not done)
    return _run_unless(done, name, f"{command} && rm -f {shlex.quote(path)}", stamp, digest)
