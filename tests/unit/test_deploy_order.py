"""deploy.py applies the topology's roles, each from the module named after it, in the topology's order."""

from __future__ import annotations

import ast
from pathlib import Path

import roles
from postyard.topology import GROUPS, LB_GROUP, TOPOLOGIES, roles_for_groups

DEPLOY = Path(__file__).resolve().parents[2] / "deploy.py"


def applied_roles() -> list[tuple[str, str, str]]:
    """(role tested by `if "<role>" in wanted`, module, function) for each role deploy.py applies, in order."""
    found = []
    for node in ast.parse(DEPLOY.read_text()).body:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Compare):
            role = node.test.left
            call = node.body[0].value if isinstance(node.body[0], ast.Expr) else None
            if isinstance(role, ast.Constant) and isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute):
                found.append((role.value, call.func.value.id, call.func.attr))
    return found


def _in_order(roles: tuple[str, ...], order: list[str]) -> bool:
    """Whether roles come in this order (others may come between them)."""
    rest = iter(order)
    return all(role in rest for role in roles)


def every_variant() -> list[tuple[str, ...]]:
    """The roles of a host in every group, alone and clustered, and of each host of every topology."""
    variants = [roles_for_groups(GROUPS, clustered) for clustered in (False, True)]
    for plans in TOPOLOGIES.values():
        clustered = sum("db" in plan.groups for plan in plans) > 1
        balanced = any(LB_GROUP in plan.groups for plan in plans)
        variants += [roles_for_groups(plan.groups, clustered, balanced) for plan in plans]
    return variants


def test_deploy_applies_every_role_of_the_topology_in_its_order():
    applied = [role for role, _, _ in applied_roles()]
    variants = every_variant()
    assert set(applied) == set().union(*variants) and len(applied) == len(set(applied))
    assert all(_in_order(variant, applied) for variant in variants)


def test_each_role_is_applied_from_the_module_named_after_it():
    for role, module, function in applied_roles():
        assert (module, function) == (role, f"deploy_{role}")


def test_roles_holds_only_role_modules_and_the_support_package():
    package = Path(roles.__file__).parent
    modules = {p.stem for p in package.glob("*.py")} - {"__init__"}
    assert modules == set().union(*every_variant())
    assert {p.name for p in package.iterdir() if p.is_dir() and p.name != "__pycache__"} == {"support"}
