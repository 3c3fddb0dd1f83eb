"""Teardown deletes this deployment's labelled resources and nothing else; the token is never written."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hcloud.images import Image
from hcloud.server_types import ServerType

from postyard.deployer import REPO
from postyard.hetzner.client import ProvisionError
from postyard.hetzner.provision import provision
from postyard.hetzner.teardown import Inventory, find_resources, teardown
from tests.hetzner.conftest import TOKEN, make_settings


def test_teardown_removes_only_labelled_resources(fake, client, tmp_path):
    settings = make_settings(tmp_path, "single")
    provision(client, settings)
    client.servers.create(name="unlabelled.example.net", server_type=ServerType(name="cx23"),
                          image=Image(name="debian-12"))
    client.servers.create(name="staging.example.net", server_type=ServerType(name="cx23"),
                          image=Image(name="debian-12"),
                          labels={"postyard-project": "postyard", "postyard-environment": "staging"})
    client.placement_groups.create(name="someone-elses", type="spread")
    teardown(client, settings, find_resources(client, settings))
    left = {s["name"] for s in fake.state.resources["servers"].values()}
    assert left == {"unlabelled.example.net", "staging.example.net"}
    assert [g["name"] for g in fake.state.resources["placement_groups"].values()] == ["someone-elses"]
    assert all(not fake.state.resources[kind] for kind in ("networks", "firewalls", "volumes", "ssh_keys", "zones"))
    # the two survivors' automatic primary IPs are theirs, not ours
    assert len(fake.state.resources["primary_ips"]) == 4
    assert find_resources(client, settings).describe() == []


@pytest.mark.parametrize("topology", ["split", "ha"])
def test_teardown_of_a_balanced_deployment_removes_its_load_balancer_and_everything_else(fake, client, tmp_path,
                                                                                         topology):
    settings = make_settings(tmp_path, topology)
    provision(client, settings)
    assert fake.state.resources["load_balancers"] and fake.state.resources["placement_groups"]
    teardown(client, settings, find_resources(client, settings))
    assert all(not items for items in fake.state.resources.values()), fake.state.resources
    assert find_resources(client, settings).describe() == []


def test_teardown_refuses_a_resource_without_the_labels(fake, client, tmp_path):
    settings = make_settings(tmp_path, "single")
    response = client.servers.create(name="unlabelled.example.net", server_type=ServerType(name="cx23"),
                                     image=Image(name="debian-12"))
    with pytest.raises(ProvisionError, match="refusing to delete unlabelled.example.net"):
        teardown(client, settings, Inventory(servers=[response.server]))
    assert len(fake.state.resources["servers"]) == 1


def run_cli(fake, tmp_path: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HCLOUD_TOKEN": TOKEN, "HCLOUD_ENDPOINT": fake.endpoint, "HOME": str(tmp_path / "home"),
           "POSTYARD_SECRETS_DIR": str(tmp_path / "secrets"), "XDG_CONFIG_HOME": str(tmp_path / "config")}
    return subprocess.run([sys.executable, "-m", "postyard", *argv, "--target", "hetzner"], cwd=REPO, env=env,
                          capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120, check=False)


def test_down_without_yes_and_without_a_terminal_deletes_nothing(fake, client, tmp_path):
    provision(client, make_settings(tmp_path, "single"))
    result = run_cli(fake, tmp_path, "down")
    assert result.returncode == 1 and "pass --yes" in result.stderr
    assert len(fake.state.resources["servers"]) == 1


def test_the_token_never_appears_in_output_or_in_any_file_written(fake, client, tmp_path):
    provision(client, make_settings(tmp_path, "single"))
    outputs = [run_cli(fake, tmp_path, "status"), run_cli(fake, tmp_path, "down", "--yes")]
    assert all(r.returncode == 0 for r in outputs), [r.stderr for r in outputs]
    assert "mail.example.com" in outputs[0].stdout and not fake.state.resources["servers"]
    assert fake.authorizations == {f"Bearer {TOKEN}"}  # the commands did use it
    for result in outputs:
        assert TOKEN not in result.stdout + result.stderr
    written = [p for p in tmp_path.rglob("*") if p.is_file()] + [p for p in REPO.rglob("*.log")]
    assert written and all(TOKEN.encode() not in p.read_bytes() for p in written)
