"""A fake Hetzner Cloud API per test, the real hcloud client against it, and settings for a deployment."""

from __future__ import annotations

from pathlib import Path

import pytest

from postyard.hetzner.client import make_client
from postyard.hetzner.settings import HetznerSettings
from tests.hetzner.fake.server import FakeHetzner
from tests.hetzner.fake.spec import spec_path

TOKEN = "hz-test-token-0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRS"

if not spec_path().exists():
    pytest.skip(f"the Hetzner OpenAPI description is not at {spec_path()}", allow_module_level=True)


@pytest.fixture
def fake():
    with FakeHetzner(TOKEN) as server:
        yield server
        server.assert_clean()


@pytest.fixture
def client(fake):
    return make_client({"HCLOUD_TOKEN": TOKEN, "HCLOUD_ENDPOINT": fake.endpoint}, poll_interval=0.01)


def make_settings(tmp_path: Path, topology: str = "split", **overrides) -> HetznerSettings:
    values = {"poll_interval": 0.01, "action_timeout": 5.0, **overrides}
    return HetznerSettings(domain="example.com", topology=topology, secrets_dir=tmp_path / "secrets", **values)


@pytest.fixture
def settings(tmp_path):
    return make_settings(tmp_path, "single")


@pytest.fixture
def split(tmp_path):
    return make_settings(tmp_path, "split")
