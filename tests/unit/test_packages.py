"""The packages role installs every role's Debian packages in one transaction, after the firewall and the data
volume, before the roles that configure them; roles name their packages once."""

from __future__ import annotations

import ast
import importlib
import subprocess
from pathlib import Path

import pytest

import roles
from postyard.topology import GROUPS, LB_GROUP, TOPOLOGIES, roles_for_groups
from roles.packages import (
    POLICY_MARKER,
    POLICY_RC_D,
    ROLE_PACKAGES,
    held_back,
    held_back_install,
    host_packages,
    policy_rc_d,
)

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
    every_role = {*roles_for_groups(GROUPS), *roles_for_groups(GROUPS, clustered=True, balanced=True),
                  *roles_for_groups(("cache",), clustered=True),
                  *roles_for_groups((LB_GROUP,))}
    named = {role for role in every_role
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


@pytest.mark.parametrize(("arguments", "allowed"), [
    (["postgresql", "start"], True), (["--quiet", "postgresql", "start"], True),
    (["postgresql.service", "start"], True), (["postgresql@15-main.service", "start"], True),
    (["opendkim", "start"], False), (["--quiet", "opendkim", "start"], False), (["postfix.service", "start"], False),
    (["redis-server", "start"], False), (["dovecot.service", "restart"], False),
])
def test_only_postgresql_is_started_by_its_package_during_the_transaction(tmp_path, arguments, allowed):
    script = tmp_path / "policy-rc.d"
    script.write_text(policy_rc_d())
    script.chmod(0o755)
    status = subprocess.run([str(script), *arguments], check=False).returncode
    assert status == (0 if allowed else 101)  # 101: "action forbidden by policy" (invoke-rc.d(8))


def run_held_back(command: str, policy: Path) -> int:
    return subprocess.run(["sh", "-c", held_back(command, str(policy))], check=False, timeout=30).returncode


# SIGTERM alone: a shell started under nohup, or in the background, ignores HUP or INT and cannot trap them.
@pytest.mark.parametrize("command", ["true", "false", "kill -TERM $$"])
def test_the_policy_is_in_place_for_the_install_and_gone_however_it_ends(tmp_path, command):
    policy = tmp_path / "policy-rc.d"
    seen = tmp_path / "seen"
    status = run_held_back(f"{policy} --quiet opendkim start; echo $? > {seen}; {command}", policy)
    assert seen.read_text().strip() == "101"
    assert not policy.exists()
    assert (status == 0) == (command == "true")


def test_a_policy_of_the_hosts_own_is_left_as_it_is(tmp_path):
    policy = tmp_path / "policy-rc.d"
    policy.write_text("#!/bin/sh\nexit 0\n")
    assert run_held_back("true", policy) == 0
    assert policy.read_text() == "#!/bin/sh\nexit 0\n"


def test_the_install_holds_back_daemons_of_the_packages_named_only():
    command = held_back_install(["postfix", "redis-server"])
    assert POLICY_MARKER in policy_rc_d() and f"trap 'rm -f {POLICY_RC_D}' EXIT" in command
    assert command.endswith("install --no-install-recommends postfix redis-server; fi")
