"""Install a systemd unit and keep it running: reload systemd when a unit file changed, restart the
unit when its files or settings changed, enable and start it. A second run changes nothing."""

from __future__ import annotations

from collections.abc import Generator, Sequence
from typing import Any

from pyinfra import host
from pyinfra.api import StringCommand, operation
from pyinfra.api.operation import OperationMeta
from pyinfra.facts.systemd import SystemdEnabled, SystemdStatus
from pyinfra.operations import files, systemd
from pyinfra.operations.util import any_changed

from roles.support.staging import jinja_options

__all__ = ["UNIT_DIR", "enabled_and_running", "install_unit", "reload_units", "start_unit"]

UNIT_DIR = "/etc/systemd/system"


class UnitStates(SystemdStatus):
    """Whether a unit is active and whether it is enabled, from one `systemctl show` (pyinfra's
    `systemd.service` runs one for each, about 10 ms apiece on a no-op deploy)."""

    def command(self, unit: str) -> StringCommand:  # type: ignore[override]
        return StringCommand("systemctl", "show", "--all", "--property", "Id", "--property", "SubState",
                             "--property", "UnitFileState", unit)

    def process(self, output: list[str]) -> dict[str, tuple[bool, bool]]:  # type: ignore[override]
        lines = list(output)
        active = SystemdStatus().process([line for line in lines if not line.startswith("UnitFileState=")])
        enabled = SystemdEnabled().process([line for line in lines if not line.startswith("SubState=")])
        return {unit: (active[unit], enabled.get(unit, False)) for unit in active}


@operation(is_idempotent=True)
def enabled_and_running(service: str) -> Generator[str, None, None]:
    """Start the unit if it is not active and enable it if it is not enabled, as pyinfra's
    `systemd.service(running=True, enabled=True)` does."""
    service = service if "." in service else f"{service}.service"
    active, enabled = host.get_fact(UnitStates, unit=service).get(service, (False, False))
    if not active:
        yield f"systemctl start {service}"
    if not enabled:
        yield f"systemctl enable {service}"


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
    enabled_and_running(name=f"Enable {label}", service=unit)


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
