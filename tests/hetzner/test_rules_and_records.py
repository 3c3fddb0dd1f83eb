"""Pure parts: Cloud Firewall rules from the exposure table, TXT splitting, labels, host plans."""

from __future__ import annotations

import pytest

from postyard.exposure import EXPOSURE
from postyard.hetzner.dns import relative_name, txt_text, txt_value
from postyard.hetzner.firewall import ANYWHERE, inbound_rules
from postyard.hetzner.labels import groups_from_labels, is_ours, resource_labels, selector
from postyard.hetzner.settings import HetznerSettings, plan_hosts
from postyard.topology import LB_GROUP


def test_inbound_rules_are_the_public_rows_without_optional_ones_by_default():
    rules = inbound_rules({})
    assert [(r.port, r.protocol) for r in rules] == [
        (str(row.port), row.protocol) for row in EXPOSURE
        if row.public and row.enabled_by is None and row.groups != (LB_GROUP,)]
    assert all(r.source_ips == ANYWHERE for r in rules)


def test_optional_rows_open_only_with_their_flag():
    ports = {r.port for r in inbound_rules({"acme_http01": True, "mailboxes_enabled": True})}
    assert {"80", "993"} <= ports


def test_private_rows_never_reach_the_cloud_firewall():
    ports = {r.port for r in inbound_rules({"acme_http01": True, "mailboxes_enabled": True})}
    private_only = {str(row.port) for row in EXPOSURE if not row.public} - {str(row.port) for row in EXPOSURE
                                                                           if row.public}
    assert private_only and not ports & private_only


def test_the_load_balancers_rows_are_hetzners_own_and_reach_no_server_rule():
    rules = inbound_rules({"acme_http01": True})
    assert len({(rule.port, rule.protocol) for rule in rules}) == len(rules)


def test_ssh_allowlist_entries_become_networks():
    (ssh,) = [r for r in inbound_rules({}, ["2001:db8::/32", "198.51.100.7"]) if r.port == "22"]
    assert ssh.source_ips == ("198.51.100.7/32", "2001:db8::/32")


@pytest.mark.parametrize("length", [0, 1, 254, 255, 256, 510, 511, 1000])
def test_txt_values_split_into_quoted_strings_of_at_most_255_bytes(length):
    text = ("v=DKIM1; p=" + "A" * length)[:max(length, 1)]
    value = txt_value(text)
    strings = value[1:-1].split('" "')
    assert all(len(s.encode()) <= 255 for s in strings)
    assert len(strings) == max(1, -(-len(text) // 255))
    assert txt_text(value) == text


def test_txt_splitting_keeps_multibyte_characters_whole_and_escapes_quotes():
    text = "é" * 200 + '"quoted"\\'
    assert txt_text(txt_value(text)) == text
    assert all(len(s.encode()) <= 255 for s in txt_value("é" * 200).strip('"').split('" "'))


def test_names_are_relative_to_the_zone():
    assert relative_name("example.com", "example.com") == "@"
    assert relative_name("_dmarc.example.com.", "example.com") == "_dmarc"
    with pytest.raises(ValueError):
        relative_name("mail.example.net", "example.com")


def test_labels_select_one_deployment_and_carry_groups():
    labels = resource_labels("postyard", "production", "server", "node1", ("mail", "db"))
    assert selector(labels).count("=") == 6
    assert is_ours(labels, "postyard", "production") and not is_ours(labels, "postyard", "staging")
    assert groups_from_labels(labels, ("mail", "db", "cache", "api")) == ("mail", "db")


def test_the_first_mail_host_is_named_after_the_mail_host_name():
    single = plan_hosts(HetznerSettings(domain="example.com"))
    assert [(h.fqdn, h.server_type) for h in single] == [("mail.example.com", "cx33")]
    split = plan_hosts(HetznerSettings(domain="example.com", topology="split"))
    assert [h.fqdn for h in split] == ["db1.example.com", "cache1.example.com", "mail.example.com",
                                       "api1.example.com", "api2.example.com"]
