"""Install a config file only after the service that reads it has validated it."""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any

from jinja2 import FileSystemLoader
from pyinfra.api.operation import OperationMeta
from pyinfra.operations import files, server

__all__ = ["STAGING_DIR", "JINJA_OPTIONS", "jinja_options", "install_validated_template"]

STAGING_DIR = PurePosixPath("/etc/postyard/staged")
TEMPLATE_DIR = str(Path(__file__).resolve().parents[2] / "templates")
# pyinfra already renders with StrictUndefined and keep_trailing_newline; these add tidy blocks.
JINJA_OPTIONS: dict[str, Any] = {"trim_blocks": True, "lstrip_blocks": True}


def jinja_options() -> dict[str, Any]:
    """A fresh copy per operation (pyinfra pops keys from the dict it is given); includes and imports
    name templates relative to templates/ (templates/systemd/sandbox.j2 is `systemd/sandbox.j2`)."""
    return {**JINJA_OPTIONS, "loader": FileSystemLoader(TEMPLATE_DIR)}


def install_validated_template(
    src: str, dest: str, validate: str, mode: str = "644", **context: Any
) -> OperationMeta:
    """Render src to a staging copy, run validate on it ({path} is the staged file), then install.

    A staging copy that fails validation is removed, so the next run validates it again
    instead of installing it; the live file is only ever replaced by a validated render. The live file's
    directory is its package's, whose program validated the copy: pyinfra need not check it exists.
    """
    staged = str(STAGING_DIR / dest.lstrip("/"))
    stage = files.template(
        name=f"Stage {dest}", src=src, dest=staged, mode=mode,
        jinja_env_kwargs=jinja_options(), **context,
    )
    check = validate.format(path=staged)
    server.shell(
        name=f"Validate {dest}",
        commands=[f"{check} || {{ rm -f {staged}; exit 1; }}"],
        _if=stage.did_change,
    )
    return files.template(
        name=f"Install {dest}", src=src, dest=dest, mode=mode, create_remote_dir=False,
        jinja_env_kwargs=jinja_options(), **context,
    )
