"""What the hosts install to run the app."""

from __future__ import annotations

import pytest
from pyinfra.api.exceptions import DeployError

from roles.app_runtime import CONTROL_ONLY, REPO, app_requirements, pinned_requirements


def test_every_runtime_dependency_is_pinned_by_the_lock():
    pinned = pinned_requirements(app_requirements(), (REPO / "constraints.txt").read_text())
    names = [line.split("==")[0] for line in pinned.splitlines()]
    assert names == app_requirements() and all("==" in line for line in pinned.splitlines())
    assert not set(names) & CONTROL_ONLY


def test_a_dependency_missing_from_the_lock_is_a_clear_error():
    with pytest.raises(DeployError, match="locks no version of litestar"):
        pinned_requirements(["litestar"], "msgspec==0.19\n")


def test_the_settings_file_refuses_values_a_shell_or_systemd_would_read_differently():
    from roles.app_runtime import render_env

    assert render_env({"POSTYARD_X": "k1:ab+/="}).endswith("POSTYARD_X=k1:ab+/=\n")
    for value in ("two words", "a$b", "a'b", "a\nb"):
        with pytest.raises(DeployError, match="POSTYARD_X"):
            render_env({"POSTYARD_X": value})


def _inventory(secrets_dir: str, groups: dict[str, list[tuple[str, dict]]]):
    """A pyinfra inventory of one production environment, hosts named in the order given."""
    from pyinfra.api import Inventory

    names = [entry for hosts in groups.values() for entry in hosts]
    return Inventory((names, {"environment": "production", "secrets_dir": secrets_dir}),
                     **{group: (hosts, {}) for group, hosts in groups.items()})


def _settings_of(inventory, name: str) -> dict[str, str]:
    from pyinfra.context import ctx_host, ctx_inventory

    from roles.app_runtime import app_settings

    with ctx_inventory.use(inventory), ctx_host.use(inventory.get_host(name)):
        return app_settings()


def test_every_api_and_mail_host_names_every_mail_host_of_its_environment_in_one_order(tmp_path):
    from app.config import Settings

    inventory = _inventory(str(tmp_path), {
        "mail": [("mail2", {"hostname": "mx2.example.com", "private_address": "10.0.0.3"}),
                 ("mail1", {"hostname": "mx1.example.com", "private_address": "10.0.0.2"}),
                 ("staging-mail", {"hostname": "mx.staging.example.com", "environment": "staging"})],
        "db": [("db1", {"private_address": "10.0.0.4"}), ("staging-mail", {})],
        "cache": [("cache1", {"private_address": "10.0.0.5"})],
        "api": [("api1", {"private_address": "10.0.0.6"})],
    })
    every = {name: _settings_of(inventory, name) for name in ("mail2", "mail1", "api1", "staging-mail")}
    names = {name: s["POSTYARD_MAIL_HOSTNAMES"] for name, s in every.items()}
    assert names == {"mail2": "mx1.example.com,mx2.example.com", "mail1": "mx1.example.com,mx2.example.com",
                     "api1": "mx1.example.com,mx2.example.com", "staging-mail": "mx.staging.example.com"}
    own = {name: s["POSTYARD_MAIL_HOSTNAME"] for name, s in every.items()}
    assert own == {"mail2": "mx2.example.com", "mail1": "mx1.example.com", "api1": "mx1.example.com",
                   "staging-mail": "mx.staging.example.com"}
    assert Settings.from_env(every["api1"]).mail_host_names == ("mx1.example.com", "mx2.example.com")


def test_with_one_mail_host_its_name_is_the_whole_list(tmp_path):
    inventory = _inventory(str(tmp_path), {"mail": [("node1", {"hostname": "mail.example.com"})],
                                           "db": [("node1", {})], "cache": [("node1", {})], "api": [("node1", {})]})
    settings = _settings_of(inventory, "node1")
    assert settings["POSTYARD_MAIL_HOSTNAMES"] == settings["POSTYARD_MAIL_HOSTNAME"] == "mail.example.com"
