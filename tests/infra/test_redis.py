"""Redis's policy, read back from the running server on each cache host."""

from __future__ import annotations

import pytest

from roles.redis import ADMIN_USER, APP_USER, DENIED_TO_APP


@pytest.fixture(scope="session")
def redis_cli(cache, cache_host):
    """Run redis-cli on the cache host as a user; the password travels in the environment."""
    uses_tls = cache.file("/etc/redis/redis.conf").contains("^tls-port 6379")
    tls = "--tls --cacert /etc/postyard/tls/internal-ca.crt " if uses_tls else ""

    def run(user: str, password: str, *command: str):
        return cache.run(
            f"REDISCLI_AUTH=%s redis-cli {tls}-h 127.0.0.1 -p 6379 --user %s --no-auth-warning "
            + " ".join(["%s"] * len(command)),
            password, user, *command,
        )

    return run


@pytest.fixture(scope="session")
def passwords(cache_host) -> dict[str, str]:
    store = cache_host.secrets()
    return {APP_USER: store.get("redis-app"), ADMIN_USER: store.get("redis-admin")}


def test_redis_is_running_and_enabled(cache):
    service = cache.service("redis-server")
    assert service.is_running
    assert service.is_enabled


def test_acl_list_has_the_default_user_off(redis_cli, passwords):
    users = redis_cli(ADMIN_USER, passwords[ADMIN_USER], "ACL", "LIST").stdout.splitlines()
    default = next(line for line in users if line.startswith("user default "))
    assert " off " in default
    app = next(line for line in users if line.startswith(f"user {APP_USER} "))
    assert " on " in app and "-@dangerous" in app


DANGEROUS = [("CONFIG", "GET", "maxmemory"), ("FLUSHALL",), ("FLUSHDB",), ("KEYS", "*"), ("MODULE", "LIST")]


@pytest.mark.parametrize("command", DANGEROUS, ids=lambda command: command[0])
def test_app_user_is_denied_dangerous_commands(redis_cli, passwords, command):
    result = redis_cli(APP_USER, passwords[APP_USER], *command)
    assert "NOPERM" in result.stdout + result.stderr


def test_app_user_can_count(redis_cli, passwords):
    assert redis_cli(APP_USER, passwords[APP_USER], "INCR", "postyard:verify:counter").stdout.strip().isdigit()


def test_persistence_is_off_by_default(redis_cli, passwords):
    save = redis_cli(ADMIN_USER, passwords[ADMIN_USER], "CONFIG", "GET", "save").stdout.splitlines()
    assert save == ["save", ""]


def test_memory_is_capped_with_ttl_eviction(redis_cli, passwords):
    policy = redis_cli(ADMIN_USER, passwords[ADMIN_USER], "CONFIG", "GET", "maxmemory-policy").stdout.split()
    memory = redis_cli(ADMIN_USER, passwords[ADMIN_USER], "CONFIG", "GET", "maxmemory").stdout.split()
    assert policy == ["maxmemory-policy", "volatile-ttl"]
    assert int(memory[1]) > 0


def test_denied_list_covers_the_dangerous_commands_named_by_policy():
    assert {"flushall", "flushdb", "config", "debug", "shutdown", "keys", "module"} <= set(DENIED_TO_APP)
