"""The packages role installs every role's Debian packages in one transaction, after the firewall and the data
volume, before the roles that configure them; roles name their packages once."""

from __future__ import annotations

import ast
import importlib
import subprocess
from pathlib import Path

import pytest

import roles
from postyard.topology import GROUPS, TOPOLOGIES, roles_for_groups
from roles.packages import POLICY_RC_D, ROLE_PACKAGES, held_back_install, host_packages, policy_rc_d

ROLES_DIR = Path(roles.__file__).parent
# Roles that run before the packages role and install their own packages.
INSTALL_THEIR_OWN = {"base", "firewall", "luks", "packages"}
LAYOUTS = sorted({plan.groups for plans in TOPOLOGIES.values() for plan in plans} | {(g,) for g in GROUPS})


def installs(call: ast.Call) -> bool:
    """An `apt.packages(...)` call that installs (not one with present=False)."""
    func = call.func
    if not (isinstance(func, ast.Attribute) and func.attr == "packages"
            and isinstance(func.value, ast.Name) and func.value.id == "apt"):
        return False
    present = next((k.value for k in call.keywords if k.arg == "present"), None)
    return not (isinstance(present, ast.Constant) and present.value is False)


@pytest.mark.parametrize("groups", LAYOUTS, ids="+".join)
def test_packages_are_installed_after_the_firewall_and_the_data_volume_and_before_the_roles_using_them(groups):
    applied = roles_for_groups(groups)
    at = applied.index("packages")
    assert "firewall" in applied[:at]
    assert "luks" not in applied[at:]
    assert all(applied.index(role) > at for role in applied if role in ROLE_PACKAGES)


def test_only_the_roles_before_the_packages_role_run_apt_themselves():
    for path in ROLES_DIR.glob("*.py"):
        calls = [node for node in ast.walk(ast.parse(path.read_text())) if isinstance(node, ast.Call)]
        if any(installs(call) for call in calls):
            assert path.stem in INSTALL_THEIR_OWN, f"{path.stem} installs packages: name them in its packages()"


def test_every_role_that_names_packages_is_in_the_packages_table():
    named = {role for role in roles_for_groups(GROUPS)
             if callable(getattr(importlib.import_module(f"roles.{role}"), "packages", None))}
    assert named == set(ROLE_PACKAGES)


def test_a_single_host_gets_each_package_once_with_the_roles_defaults():
    packages = host_packages(roles_for_groups(GROUPS), {})
    assert len(packages) == len(set(packages))
    assert {"postgresql", "redis-server", "postfix", "postfix-mta-sts-resolver", "opendkim", "certbot"} <= set(packages)
    assert "rsync" not in packages


def test_settings_add_and_drop_packages():
    packages = host_packages(roles_for_groups(GROUPS), {"postfix_mta_sts": False, "backup_remote": "u@backup"})
    assert "postfix-mta-sts-resolver" not in packages
    assert {"rsync", "openssh-client"} <= set(packages)


def test_an_api_host_gets_no_mail_or_database_server():
    packages = host_packages(roles_for_groups(("api",)), {})
    assert not {"postgresql", "postfix", "redis-server", "opendkim"} & set(packages)


@pytest.mark.parametrize(("service", "allowed"), [
    ("postgresql", True), ("postgresql.service", True), ("postgresql@15-main.service", True),
    ("opendkim", False), ("postfix.service", False), ("redis-server", False), ("dovecot.service", False),
])
def test_only_postgresql_is_started_by_its_package_during_the_transaction(tmp_path, service, allowed):
    script = tmp_path / "policy-rc.d"
    script.write_text(policy_rc_d())
    script.chmod(0o755)
    status = subprocess.run([str(script), service, "start"], check=False).returncode
    assert status == (0 if allowed else 101)  # 101: "action forbidden by policy" (invoke-rc.d(8))


def test_the_held_back_install_removes_its_policy_however_apt_ends():
    command = held_back_install(["postfix", "redis-server"])
    assert command.startswith(f"trap 'rm -f {POLICY_RC_D}' EXIT && ")
    assert command.endswith("install --no-install-recommends postfix redis-server")
