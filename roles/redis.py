"""Redis role: rate-limit counters and caches, ACL users only, TLS where clients cross hosts."""

from __future__ import annotations

import hashlib
from io import StringIO
from typing import Any

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import files, systemd
from pyinfra.operations.util import any_changed

from app import tls_policy
from roles.support.inventory_secrets import install_internal_tls, secret
from roles.support.peers import peers_by_group
from roles.support.staging import jinja_options
from roles.support.systemd_units import enabled_and_running

__all__ = ["DEFAULTS", "APP_USER", "ADMIN_USER", "DENIED_TO_APP", "acl_context", "config_context", "deploy_redis",
           "packages"]

DEFAULTS: dict[str, Any] = {
    # Memory cap and what to evict at the cap: counters all carry a TTL, so the ones closest to
    # expiring go first.
    "redis_maxmemory": "256mb",
    "redis_maxmemory_policy": "volatile-ttl",
    # RDB snapshots to /var/lib/redis; off: Redis holds nothing that cannot be rebuilt.
    "redis_persistence": False,
    # TLS on port 6379 (no plaintext port at all); unset: on exactly when an api host other than
    # this one uses Redis. Without TLS Redis listens on loopback only.
    "redis_tls": None,
}

APP_USER = "postyard"
ADMIN_USER = "postyard-admin"
# Named on top of -@dangerous so the policy reads plainly in the ACL file.
DENIED_TO_APP = (
    "flushall", "flushdb", "config", "debug", "shutdown", "keys", "module", "acl", "monitor",
    "replicaof", "slaveof", "save", "bgsave", "bgrewriteaof", "migrate", "restore", "sync", "psync",
)


def packages(data: Any) -> tuple[str, ...]:
    """The Debian packages this role needs; the packages role installs them with every other role's."""
    return ("redis-server",)


def acl_context(app_password: str, admin_password: str) -> dict[str, Any]:
    """Users as ACL rules; passwords only as SHA-256 digests, as Redis stores them."""
    return {
        "app_user": APP_USER,
        "app_digest": hashlib.sha256(app_password.encode()).hexdigest(),
        "admin_user": ADMIN_USER,
        "admin_digest": hashlib.sha256(admin_password.encode()).hexdigest(),
        "denied": DENIED_TO_APP,
    }


def config_context(data: Any, bind: list[str], tls: bool) -> dict[str, Any]:
    return {
        "bind": bind,
        "tls": tls,
        "tls_policy": tls_policy.REDIS,
        "maxmemory": data.redis_maxmemory,
        "maxmemory_policy": data.redis_maxmemory_policy,
        "persistence": bool(data.redis_persistence),
    }


@deploy("Redis", data_defaults=DEFAULTS)
def deploy_redis() -> None:
    use_tls = host.data.redis_tls if host.data.redis_tls is not None else bool(peers_by_group().get("api"))
    bind = ["127.0.0.1", "-::1"]
    tls_changes = []
    if use_tls:
        bind.append(host.data.private_address)
        tls_changes = install_internal_tls("redis", owner="redis")

    config = files.template(
        name="Upload /etc/redis/redis.conf", src="templates/redis/redis.conf.j2", dest="/etc/redis/redis.conf",
        user="redis", group="redis", mode="640", jinja_env_kwargs=jinja_options(),
        **config_context(host.data, bind, use_tls),
    )
    acl = files.template(
        name="Upload /etc/redis/users.acl", src="templates/redis/users.acl.j2", dest="/etc/redis/users.acl",
        user="redis", group="redis", mode="640", jinja_env_kwargs=jinja_options(),
        **acl_context(secret("redis-app"), secret("redis-admin")),
    )
    files.put(
        name="Keep the admin password for operators (root only)",
        src=StringIO(secret("redis-admin") + "\n"), dest="/etc/redis/postyard-admin.password", mode="600",
    )
    systemd.service(
        name="Restart Redis", service="redis-server.service", restarted=True,
        _if=any_changed(config, acl, *tls_changes),
    )
    enabled_and_running(name="Enable Redis", service="redis-server.service")

