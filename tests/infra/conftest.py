"""The verification suite runs against every host of an inventory: testbed in CI, Hetzner in production.

    pytest tests/infra --inventory=inventory/hetzner.py            # from the operator's machine
    pytest --testbed                                               # boots a testbed first
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path

import pytest
import testinfra

from postyard.inventory_hosts import InfraHost, load_hosts
from postyard.probe import Vantage

_HOSTS: dict[str, list[InfraHost]] = {}


def inventory_hosts(config: pytest.Config) -> list[InfraHost]:
    path = config.getoption("inventory")
    if not path:
        return []
    if path not in _HOSTS:
        _HOSTS[path] = load_hosts(Path(path))
    return _HOSTS[path]


# fixture name -> the group whose hosts it runs on (None: every host)
HOST_FIXTURES: dict[str, str | None] = {
    "infra_host": None, "db_host": "db", "cache_host": "cache", "mail_host": "mail", "api_host": "api",
}
# fixture name -> the role whose hosts it runs on (a role can serve several groups)
ROLE_FIXTURES: dict[str, str] = {"tls_host": "tls", "pitr_host": "pgbackrest", "patroni_host": "patroni",
                                 "pitr_member_host": "pgbackrest_member",
                                 "pitr_repository_host": "pgbackrest_repository",
                                 "router_host": "postgresql_router", "balancer_host": "load_balancer",
                                 "proxy_host": "api_proxy"}


def _parametrize(metafunc: pytest.Metafunc, fixture: str, hosts: list[InfraHost], missing: str) -> None:
    metafunc.parametrize(
        fixture, hosts or [None], ids=[h.name for h in hosts] or [f"no-{missing}"],
        scope="session", indirect=True,
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    hosts = inventory_hosts(metafunc.config)
    for fixture, group in HOST_FIXTURES.items():
        if fixture in metafunc.fixturenames:
            chosen = [h for h in hosts if group is None or group in h.groups]
            _parametrize(metafunc, fixture, chosen, group or "host")
    for fixture, role in ROLE_FIXTURES.items():
        if fixture in metafunc.fixturenames:
            _parametrize(metafunc, fixture, [h for h in hosts if role in h.roles], f"{role}-host")


@pytest.fixture(scope="session")
def all_hosts(request: pytest.FixtureRequest) -> list[InfraHost]:
    """Every host of the inventory."""
    return inventory_hosts(request.config)


def _chosen(request: pytest.FixtureRequest) -> InfraHost:
    if request.param is None:
        pytest.skip("no such host in the inventory (pass --testbed or --inventory)")
    return request.param


def _host_fixture(name: str):
    """A session fixture that hands out the host pytest_generate_tests chose for this test."""

    @pytest.fixture(scope="session", name=name)
    def chosen_host(request: pytest.FixtureRequest) -> InfraHost:
        return _chosen(request)

    return chosen_host


# pytest finds fixtures among the module's names: one per entry of the tables above.
globals().update({name: _host_fixture(name) for name in (*HOST_FIXTURES, *ROLE_FIXTURES)})


def connect(infra_host: InfraHost):
    """testinfra's host, over OpenSSH with the inventory's key and known_hosts."""
    spec, options = infra_host.testinfra_spec()
    return testinfra.get_host(spec, **options)


def _connection_fixture(name: str, host_fixture: str):
    """A session fixture with testinfra's connection to the host another fixture chose."""

    def connected(**chosen: InfraHost):
        return connect(chosen[host_fixture])

    # pytest reads a fixture's dependencies from its signature: this one depends on host_fixture.
    connected.__signature__ = inspect.Signature([inspect.Parameter(host_fixture, inspect.Parameter.KEYWORD_ONLY)])
    return pytest.fixture(scope="session", name=name)(connected)


# testinfra connection fixture -> the host fixture it connects to
CONNECTIONS: dict[str, str] = {
    "host": "infra_host", "db": "db_host", "cache": "cache_host", "mail": "mail_host", "api": "api_host",
    "tls": "tls_host", "pitr": "pitr_host", "patroni": "patroni_host", "router": "router_host",
    "pitr_member": "pitr_member_host", "pitr_repository": "pitr_repository_host",
    "balancer": "balancer_host", "proxy": "proxy_host",
}
globals().update({name: _connection_fixture(name, chosen) for name, chosen in CONNECTIONS.items()})


@pytest.fixture(scope="session")
def outside(infra_host: InfraHost) -> Vantage:
    """A client elsewhere on the internet: the testbed's outside namespace, or this machine."""
    return Vantage(infra_host.outside_netns)


@pytest.fixture(scope="session")
def in_container(host) -> bool:
    return host.run("systemd-detect-virt --container").stdout.strip() not in ("", "none")


# The user property each certificate test records, listed together at the end of the run.
DAYS_LEFT_PROPERTY = "certificate_days_left"


@pytest.fixture
def report_days_left(record_property) -> Callable[[str], None]:
    """Record one line for the "certificate days left" summary, whether the test then passes or not."""
    return lambda line: record_property(DAYS_LEFT_PROPERTY, line)


def pytest_terminal_summary(terminalreporter) -> None:
    lines = {
        value
        for reports in terminalreporter.stats.values() for report in reports if getattr(report, "when", "") == "call"
        for name, value in getattr(report, "user_properties", ()) if name == DAYS_LEFT_PROPERTY
    }
    if lines:
        terminalreporter.write_sep("-", "certificate days left")
        for line in sorted(lines):
            terminalreporter.write_line(line)
