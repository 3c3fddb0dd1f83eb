"""The control machine's operator commands: `python -m postyard admin ...`, and the first operator `up` makes."""

from __future__ import annotations

import os
import shlex
import stat
from pathlib import Path

import pytest

from postyard.appliance import FIRST_OPERATOR_STAMP, _first_operator, operator_email
from postyard.cli import parser
from postyard.inventory_hosts import InfraHost


def test_everything_after_admin_goes_to_the_host_command_even_options_postyard_also_has():
    args = parser().parse_args(["admin", "--target", "hetzner", "suspend", "T1", "--reason", "a b", "--target", "x"])
    assert args.target == "hetzner" and args.admin_args == ["suspend", "T1", "--reason", "a b", "--target", "x"]


@pytest.mark.parametrize("fqdn,expected", [
    ("api.example.com", "operator@example.com"),
    ("api.eu.example.com", "operator@eu.example.com"),
    ("example.com", "operator@example.com"),
])
def test_the_first_operator_is_operator_at_the_api_hosts_domain(fqdn, expected):
    assert operator_email(fqdn, env={}) == expected


def test_the_first_operators_address_can_be_set():
    assert operator_email("api.example.com", env={"POSTYARD_OPERATOR_EMAIL": "me@example.org"}) == "me@example.org"


@pytest.fixture
def recording_ssh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An `ssh` on PATH that records the login and the remote command line, and answers as `create-operator` would."""
    log = tmp_path / "ssh.log"
    fake = tmp_path / "bin" / "ssh"
    fake.parent.mkdir()
    fake.write_text(f'#!/bin/sh\nfor last; do login="$previous"; previous="$last"; done\n'
                    f'printf "%s %s\\n" "$login" "$last" >> {log}\n'
                    'echo "operator: operator@example.com"\necho "operator password (shown once): s3cret"\n')
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    return log


def _host(secrets: Path, name: str, address: str, group: str) -> InfraHost:
    return InfraHost(name=name, fqdn=f"{name}.example.com", address=address, groups=(group,), roles=(), flags={},
                     tls_names=(), private_address=None, environment=None, secrets_dir=str(secrets),
                     outside_netns=None, ssh_user="root", ssh_key=None, known_hosts=None)


def test_up_makes_the_first_operator_on_the_schema_host_and_shows_its_password_once(recording_ssh, tmp_path,
                                                                                    monkeypatch):
    monkeypatch.delenv("POSTYARD_OPERATOR_EMAIL", raising=False)
    api = _host(tmp_path / "secrets", "api", "192.0.2.10", "api")
    schema = _host(tmp_path / "secrets", "mail", "192.0.2.11", "mail")
    first, second = _first_operator(api, schema), _first_operator(api, schema)
    commands = [shlex.split(line) for line in recording_ssh.read_text().splitlines()]
    assert commands == [["root@192.0.2.11", "postyard-api", "admin", "create-operator", "--first",
                         "operator@example.com"]]
    assert "    operator password (shown once): s3cret" in first
    assert "s3cret" not in "\n".join(second) and (tmp_path / "secrets" / FIRST_OPERATOR_STAMP).exists()
