"""The verification suite runs against every host of an inventory: testbed in CI, Hetzner in production.

    pytest tests/infra --inventory=inventory/hetzner.py            # from the operator's machine
    pytest --testbed                                               # boots a testbed first
"""

from __future__ import annotations

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


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "infra_host" in metafunc.fixturenames:
        hosts = inventory_hosts(metafunc.config)
        metafunc.parametrize(
            "infra_host", hosts or [None], ids=[h.name for h in hosts] or ["no-inventory"],
            scope="session", indirect=True,
        )


@pytest.fixture(scope="session")
def infra_host(request: pytest.FixtureRequest) -> InfraHost:
    if request.param is None:
        pytest.skip("no inventory: pass --testbed or --inventory")
    return request.param


@pytest.fixture(scope="session")
def host(infra_host: InfraHost):
    """testinfra's host, over OpenSSH with the inventory's key and known_hosts."""
    spec, options = infra_host.testinfra_spec()
    return testinfra.get_host(spec, **options)


@pytest.fixture(scope="session")
def outside(request: pytest.FixtureRequest) -> Vantage:
    """A client elsewhere on the internet: the testbed's outside namespace, or this machine."""
    return Vantage(request.config.getoption("outside_netns"))


@pytest.fixture(scope="session")
def in_container(host) -> bool:
    return host.run("systemd-detect-virt --container").stdout.strip() not in ("", "none")
