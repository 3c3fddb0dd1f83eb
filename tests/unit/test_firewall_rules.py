"""Which openings the firewall renders for a host, from the table, its groups and its peers."""

from __future__ import annotations

from roles.firewall import Opening, firewall_context, source_matches

EVERY_GROUP = ("mail", "db", "cache", "api")


BASE_ROLES = ("base", "firewall")


def context(groups, roles=BASE_ROLES, peers=None, flags=None, allowlist=()):
    return firewall_context(groups, roles, flags or {}, peers or {}, "eth0", "eth1", allowlist)


def test_single_host_opens_only_ssh_publicly_and_nothing_privately():
    rendered = context(EVERY_GROUP)
    assert rendered["public_openings"] == [Opening(22, "tcp", "ssh")]
    assert rendered["private_openings"] == []


def test_ssh_allowlist_restricts_sources_per_address_family():
    rendered = context(("api",), allowlist=["198.51.100.0/24", "2001:db8::/32"])
    assert rendered["public_openings"] == [
        Opening(22, "tcp", "ssh", "ip saddr { 198.51.100.0/24 }"),
        Opening(22, "tcp", "ssh", "ip6 saddr { 2001:db8::/32 }"),
    ]


def test_source_matches_deduplicates_and_sorts():
    assert source_matches(["10.0.0.3", "10.0.0.2", "10.0.0.3"]) == ["ip saddr { 10.0.0.2, 10.0.0.3 }"]


def test_no_sources_gives_no_match_at_all():
    assert source_matches([]) == []


def test_private_port_opens_only_to_peers_in_its_client_groups():
    peers = {"api": ["10.0.1.3", "10.0.1.4"], "mail": ["10.0.1.5"], "cache": ["10.0.1.6"], "db": ["10.0.1.7"]}
    rendered = context(("db",), roles=BASE_ROLES + ("postgresql",), peers=peers)
    assert rendered["private_openings"] == [
        Opening(5432, "tcp", "postgresql", "ip saddr { 10.0.1.3, 10.0.1.4, 10.0.1.5, 10.0.1.6 }")
    ]


def test_private_port_without_peers_stays_closed():
    rendered = context(("cache",), roles=BASE_ROLES + ("redis",), peers={"mail": ["10.0.1.5"]})
    assert rendered["private_openings"] == []


def test_service_ports_open_publicly_once_their_role_is_deployed():
    rendered = context(("mail", "api"), roles=BASE_ROLES + ("postfix", "api"))
    assert [o.port for o in rendered["public_openings"]] == [22, 25, 443, 465, 587]
