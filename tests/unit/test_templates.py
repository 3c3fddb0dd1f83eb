"""Every template renders with StrictUndefined from the context its role builds."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from roles import base, firewall
from roles.staging import JINJA_OPTIONS

REPO = Path(__file__).resolve().parents[2]
BASE_DATA = SimpleNamespace(**base.DEFAULTS)

CONTEXTS: dict[str, dict[str, Any]] = {
    "base/hosts.j2": base.hosts_context("node1.example.net"),
    "base/sshd_config.j2": base.sshd_context(BASE_DATA),
    "base/journald.conf.j2": base.journald_context(BASE_DATA),
    "base/timesyncd.conf.j2": {"servers": BASE_DATA.time_servers},
    "base/20auto-upgrades.j2": base.unattended_context(BASE_DATA),
    "base/52postyard-unattended-upgrades.j2": base.unattended_context(BASE_DATA),
    "firewall/nftables.conf.j2": firewall.firewall_context(
        ("mail", "db", "api"), ("base", "firewall", "postfix", "postgresql", "api"), {},
        {"api": ["10.0.1.3"], "mail": ["10.0.1.4"]}, "eth0", "enp7s0", ["198.51.100.7", "2001:db8::/32"],
    ),
}
TEMPLATES = sorted(str(p.relative_to(REPO / "templates")) for p in (REPO / "templates").rglob("*.j2"))


def render(name: str) -> str:
    environment = Environment(
        loader=FileSystemLoader(REPO / "templates"), undefined=StrictUndefined,
        keep_trailing_newline=True, **JINJA_OPTIONS,
    )
    return environment.get_template(name).render(CONTEXTS[name])


@pytest.mark.parametrize("name", TEMPLATES)
def test_template_renders_with_strict_undefined(name):
    assert name in CONTEXTS, f"add a context for templates/{name} to this test"
    rendered = render(name)
    assert "Managed by postyard" in rendered
    assert "{{" not in rendered and "{%" not in rendered


def test_every_context_names_an_existing_template():
    assert set(CONTEXTS) <= set(TEMPLATES)


def test_sshd_config_allows_public_keys_only():
    lines = set(render("base/sshd_config.j2").splitlines())
    assert {"PasswordAuthentication no", "KbdInteractiveAuthentication no",
            "AuthenticationMethods publickey"} <= lines


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("nft"), reason="nft -c needs root and nftables")
def test_rendered_ruleset_passes_nft_check(tmp_path):
    ruleset = tmp_path / "nftables.conf"
    ruleset.write_text(render("firewall/nftables.conf.j2"))
    # checked in a throwaway network namespace: nothing is applied anywhere
    check = subprocess.run(["unshare", "--net", "nft", "-c", "-f", str(ruleset)],
                           capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stderr
