"""Commands that run until they succeed once for a given input, then not again.

A stamp file on the host records the input (a digest) a command last succeeded for: a failed run
leaves no stamp, so the next deploy tries again; an unchanged input reports no change.
"""

from __future__ import annotations

import hashlib
import shlex

from pyinfra import host
from pyinfra.api.operation import OperationMeta
from pyinfra.facts.files import Sha1File
from pyinfra.operations import server

__all__ = ["run_once_for"]


def run_once_for(name: str, command: str, stamp: str, digest: str) -> OperationMeta:
    content = digest + "\n"
    done = host.get_fact(Sha1File, path=stamp) == hashlib.sha1(content.encode()).hexdigest()
    return server.shell(
        name=name,
        commands=[f"{command} && printf %s {shlex.quote(content)} > {stamp}"],
        _if=lambda: not done,
    )
