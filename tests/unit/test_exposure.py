"""The exposure table is consistent, and every copy of it for humans is generated from it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from app.host_layout import ACME_STANDALONE_PORT
from postyard.cli import exposure_markdown
from postyard.exposure import EXPOSURE, exposures_for_host, public_ports_open_on
from postyard.topology import GROUPS, INVENTORY_GROUPS, LB_GROUP, TOPOLOGIES, roles_for_groups
from roles.firewall import DEFAULTS as FIREWALL_DEFAULTS

README = Path(__file__).resolve().parents[2] / "README.md"
PLANNED_ROLES = {"base", "firewall", "luks", "tls", "postfix", "dovecot", "postgresql", "redis", "api", "patroni",
                 "etcd", "load_balancer", "api_proxy", "pgbackrest_member", "pgbackrest_repository"}


@pytest.mark.parametrize("balanced", [False, True])
@pytest.mark.parametrize("clustered", [False, True])
def test_each_port_and_protocol_opens_once_on_each_side_of_any_host(clustered, balanced):
    every_flag = {"acme_http01": True, "mailboxes_enabled": True}
    for groups in (GROUPS, ("api",), (LB_GROUP,)):
        roles = roles_for_groups(groups, clustered, balanced)
        keys = [(row.port, row.protocol, row.public) for row in exposures_for_host(groups, roles, every_flag)]
        assert len(keys) == len(set(keys))


@pytest.mark.parametrize("row", EXPOSURE, ids=lambda row: row.service)
def test_row_names_known_groups_and_roles(row):
    assert 0 < row.port < 65536
    assert set(row.groups) <= set(INVENTORY_GROUPS)
    assert set(row.clients) <= set(INVENTORY_GROUPS)
    assert row.role in PLANNED_ROLES


@pytest.mark.parametrize("row", EXPOSURE, ids=lambda row: row.service)
def test_private_rows_name_their_clients_and_public_rows_do_not(row):
    assert bool(row.clients) != row.public


@pytest.mark.parametrize("row", [r for r in EXPOSURE if r.enabled_by], ids=lambda row: row.service)
def test_optional_rows_are_off_by_default(row):
    assert FIREWALL_DEFAULTS[row.enabled_by] is False


def test_ssh_is_public_on_every_group():
    ssh = next(row for row in EXPOSURE if row.port == 22)
    assert ssh.public and set(ssh.groups) == set(INVENTORY_GROUPS)


def test_only_ssh_opens_while_no_service_role_is_deployed():
    assert public_ports_open_on(GROUPS, ("base", "firewall"), {}) == ((22, "tcp"),)


def test_a_row_opens_only_where_its_role_is_deployed():
    rows = exposures_for_host(("mail",), ("base", "firewall", "postfix"), {})
    assert {row.port for row in rows} == {22, 25, 465, 587}


def test_optional_row_opens_only_with_its_flag():
    roles = ("base", "firewall", "postfix", "dovecot")
    assert 993 not in {row.port for row in exposures_for_host(("mail",), roles, {})}
    assert 993 in {row.port for row in exposures_for_host(("mail",), roles, {"mailboxes_enabled": True})}


@pytest.mark.parametrize("topology", sorted(TOPOLOGIES))
def test_every_group_has_a_host_in_each_topology(topology):
    covered = {group for host in TOPOLOGIES[topology] for group in host.groups}
    assert set(GROUPS) <= covered <= set(INVENTORY_GROUPS)


@pytest.mark.parametrize("topology", sorted(TOPOLOGIES))
def test_several_api_hosts_sit_behind_a_load_balancer(topology):
    api_hosts = [host for host in TOPOLOGIES[topology] if "api" in host.groups]
    balancers = [host for host in TOPOLOGIES[topology] if LB_GROUP in host.groups]
    assert len(balancers) == (1 if len(api_hosts) > 1 else 0)
    assert all(host.groups == (LB_GROUP,) for host in balancers)


def test_roles_start_with_the_common_ones_and_repeat_none():
    roles = roles_for_groups(GROUPS)
    assert roles[:2] == ("base", "firewall")
    assert len(roles) == len(set(roles))


def test_readme_table_is_the_generated_one():
    readme = README.read_text()
    block = re.search(r"<!-- exposure-table -->\n(.*?)<!-- /exposure-table -->", readme, re.DOTALL)
    assert block, "README.md lost its generated exposure table markers"
    assert block.group(1) == exposure_markdown(), "regenerate it: python -m postyard exposure"


def test_deploy_calls_every_role_of_every_group():
    deploy = (README.parent / "deploy.py").read_text()
    for role in roles_for_groups(GROUPS):
        assert f'if "{role}" in wanted:' in deploy


def test_only_the_acme_challenge_port_listens_on_demand():
    assert {row.port for row in EXPOSURE if row.on_demand} == {80, ACME_STANDALONE_PORT}
