"""Install a systemd unit and keep it running: reload systemd when a unit file changed, restart the
unit when its files or settings changed, enable and start it. A second run changes nothing."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pyinfra.api.operation import OperationMeta
from pyinfra.operations import files, systemd
from pyinfra.operations.util import any_changed

from roles.support.staging import jinja_options

__all__ = ["UNIT_DIR", "install_unit", "reload_units", "start_unit"]

UNIT_DIR = "/etc/systemd/system"


def reload_units(*unit_files: OperationMeta) -> None:
    """`systemctl daemon-reload` when one of these unit files (or drop-ins) changed."""
    systemd.daemon_reload(name="Reload systemd units", _if=any_changed(*unit_files))


def start_unit(
    unit: str, unit_files: Sequence[OperationMeta], restart_on: Sequence[OperationMeta] = (),
    label: str | None = None, restart: bool = True,
) -> None:
    """After the unit's files were written: reload, restart on a change (unless restart is False),
    enable and start."""
    label = label or unit
    reload_units(*unit_files)
    if restart:
        systemd.service(name=f"Restart {label}", service=unit, restarted=True,
                        _if=any_changed(*unit_files, *restart_on))
    systemd.service(name=f"Enable {label}", service=unit, running=True, enabled=True)


def install_unit(
    unit: str, src: str, /, restart_on: Sequence[OperationMeta] = (), label: str | None = None, **context: Any,
) -> OperationMeta:
    """Render the template src as /etc/systemd/system/<unit> (mode 644), then start_unit.

    unit and src are positional-only, so the template's context may have names of the same spelling; UNIT_DIR
    is systemd's, so pyinfra need not check it exists."""
    installed = files.template(name=f"Install {unit}", src=src, dest=f"{UNIT_DIR}/{unit}", mode="644",
                               create_remote_dir=False, jinja_env_kwargs=jinja_options(), **context)
    start_unit(unit, (installed,), restart_on, label)
    return installed
