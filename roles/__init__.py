"""Roles: one module per service, each a pyinfra @deploy function; ROLES maps names to them."""

from __future__ import annotations

from collections.abc import Callable

from roles.base import deploy_base
from roles.firewall import deploy_firewall
from roles.luks import deploy_luks

__all__ = ["ROLES"]

ROLES: dict[str, Callable[[], object]] = {
    "base": deploy_base,
    "firewall": deploy_firewall,
    "luks": deploy_luks,
}
