"""The app's long-running services as hardened systemd units (templates/app/service.j2).

Every unit runs as the `postyard` user with systemd's sandboxing; only the API keeps one
capability (binding port 443). A unit with a database role of its own reads that role's URL from a
file only root reads (systemd passes it on), so no other process of the host sees it.
"""

from __future__ import annotations

from dataclasses import dataclass
from io import StringIO

from pyinfra import host
from pyinfra.api.operation import OperationMeta
from pyinfra.operations import files

from roles import app_runtime
from roles.support.database_client import database_login
from roles.support.systemd_units import install_unit

__all__ = ["SOURCE_ENV", "AppUnit", "install_app_units", "role_env_file"]

SOURCE_ENV = f"PYTHONPATH={app_runtime.SOURCE}"


@dataclass(frozen=True)
class AppUnit:
    name: str
    description: str
    exec_start: str
    after: tuple[str, ...] = ()
    group: str = "postyard"
    supplementary_groups: tuple[str, ...] = ()
    environment: tuple[str, ...] = (SOURCE_ENV,)
    extra_env_files: tuple[str, ...] = ()
    exec_start_pre: tuple[str, ...] = ()
    # Run after ExecStart until they succeed: systemd calls the unit active only then (a readiness wait).
    exec_start_post: tuple[str, ...] = ()
    runtime_directory: str | None = None
    runtime_directory_mode: str = "0700"
    state_directory: str | None = None
    capabilities: tuple[str, ...] = ()
    memory_deny_write_execute: bool = True
    restart: str = "on-failure"
    proc_subset_pid: bool = True  # hide /proc beyond processes (journalctl needs the boot id there)
    # ProtectKernelTunables, ProtectControlGroups and ProtectProc; `journalctl -f` prints nothing
    # under them in a container, so the journal follower goes without.
    protect_kernel_views: bool = True
    memory_max: str | None = None  # systemd's MemoryMax= (e.g. "256M"): the kernel ends the unit beyond it
    database_role: str | None = None  # the role it connects as (app/db/roles.py), in role_env_file

    @property
    def unit(self) -> str:
        return f"{self.name}.service"


def role_env_file(unit: AppUnit) -> str:
    return f"/etc/postyard/{unit.name}.env"


def install_app_units(units: tuple[AppUnit, ...], settings: OperationMeta | None = None) -> None:
    """Install, (re)start and enable each unit; a changed settings file restarts them too."""
    for unit in host.loop(units):
        restart_on = [settings] if settings else []
        role_env = role_env_file(unit) if unit.database_role else None
        if unit.database_role:
            url = database_login(unit.database_role).sqlalchemy_url()
            restart_on.append(files.put(
                name=f"Upload {role_env}", dest=role_env, user="root", group="root", mode="600",
                src=StringIO(app_runtime.render_env({"POSTYARD_SERVICE_DATABASE_URL": url}))))
        install_unit(unit.unit, "templates/app/service.j2", restart_on=restart_on, unit=unit,
                     env_file=app_runtime.APP_ENV, role_env_file=role_env, release=app_runtime.release_digest())
