"""Roles: one module per service, each a pyinfra @deploy function; ROLES maps names to them."""

from __future__ import annotations

from collections.abc import Callable

from roles.base import deploy_base
from roles.firewall import deploy_firewall
from roles.postgresql import deploy_postgresql
from roles.postgresql_backup import deploy_postgresql_backup
from roles.redis import deploy_redis

__all__ = ["ROLES"]

ROLES: dict[str, Callable[[], object]] = {
    "base": deploy_base,
    "firewall": deploy_firewall,
    "postgresql": deploy_postgresql,
    "postgresql_backup": deploy_postgresql_backup,
    "redis": deploy_redis,
}
