"""Provisioning against the fake API: what it creates, idempotency, failures and their messages."""

from __future__ import annotations

import hashlib

import pytest

from app.host_layout import API_PROXY_HEALTH_PATH, API_PROXY_HEALTH_PORT, API_PROXY_PORT
from postyard.exposure import EXPOSURE
from postyard.hetzner.client import ProvisionError
from postyard.hetzner.dns import mta_sts_policy, txt_text
from postyard.hetzner.inventory import host_entries
from postyard.hetzner.provision import provision
from postyard.targets import make_target
from postyard.topology import GROUPS, TOPOLOGIES, HostPlan
from tests.hetzner.conftest import TOKEN, make_settings

SPLIT = {"ssh_keys": 1, "networks": 1, "firewalls": 1, "primary_ips": 10, "servers": 5, "volumes": 1,
         "load_balancers": 1, "zones": 1, "placement_groups": 1}
# split's, with two more db hosts (each with its primary IPs and its volume) and a second mail host
HA = {**SPLIT, "primary_ips": 16, "servers": 8, "volumes": 3}


def counts(fake) -> dict[str, int]:
    return {kind: len(items) for kind, items in fake.state.resources.items()}


def rrsets(fake) -> dict[tuple[str, str], list[str]]:
    (zone_id,) = fake.state.rrsets
    return {key: [r["value"] for r in rrset["records"]] for key, rrset in fake.state.rrsets[zone_id].items()}


def test_provisioning_from_nothing_creates_exactly_the_planned_resources(fake, client, split):
    provision(client, split)
    assert counts(fake) == SPLIT
    assert len(rrsets(fake)) == 2 + 21  # NS and SOA; A and AAAA of 5 hosts, api, mta-sts; 7 mail records


def test_single_topology_has_one_server_and_no_load_balancer(fake, client, tmp_path):
    result = provision(client, make_settings(tmp_path, "single"))
    assert counts(fake)["servers"] == 1 and counts(fake)["load_balancers"] == 0
    assert counts(fake)["placement_groups"] == 0  # one server has no physical host to share
    (host,) = result.hosts
    assert host.fqdn == "mail.example.com" and host.data_volume


def test_a_second_run_creates_and_changes_nothing_also_across_pages(fake, client, split):
    fake.api.max_per_page = 2  # every listing crosses pages
    provision(client, split)
    before = len(fake.created())
    again = provision(client, split)
    assert (again.created, again.changed) == ([], [])
    assert len(fake.created()) == before and counts(fake) == SPLIT


@pytest.mark.parametrize(("method", "path", "status", "code", "after"), [
    ("POST", r"^/servers$", 503, "unavailable", False),
    ("POST", r"^/servers$", 500, "server_error", True),  # created, but the reply was lost
    ("POST", r"/rrsets$", 503, "unavailable", False),
])
def test_a_run_that_fails_halfway_completes_on_retry_without_duplicates(fake, client, split, method, path,
                                                                      status, code, after):
    fake.fail(method, path, status, code, times=1, after=after)
    with pytest.raises(ProvisionError, match=code):
        provision(client, split)
    provision(client, split)
    assert counts(fake) == SPLIT


def test_a_rate_limited_request_is_retried(fake, client, settings):
    fake.fail("POST", r"^/networks$", 429, "rate_limit_exceeded")
    provision(client, settings)
    assert counts(fake)["networks"] == 1 and counts(fake)["servers"] == 1


def test_resource_limit_exceeded_says_to_raise_the_limit(fake, client, settings):
    fake.api.limits["servers"] = 0
    with pytest.raises(ProvisionError, match="resource limit is reached.*raise the limit"):
        provision(client, settings)


def test_an_invalid_token_is_reported_as_such(fake, settings):
    from postyard.hetzner.client import make_client
    wrong = make_client({"HCLOUD_TOKEN": "wrong", "HCLOUD_ENDPOINT": fake.endpoint})
    with pytest.raises(ProvisionError, match="refused HCLOUD_TOKEN"):
        provision(wrong, settings)


def test_a_location_without_the_server_type_is_refused_before_anything_is_created(fake, client, tmp_path):
    settings = make_settings(tmp_path, "single", location="ash", server_types={"single": "cx33", "default": "cx23"})
    with pytest.raises(ProvisionError, match="cx33 is not offered in location ash"):
        provision(client, settings)
    assert fake.created() == []


def test_an_action_that_never_finishes_times_out_with_a_clear_error(fake, client, tmp_path):
    fake.state.action_polls = 10**6
    with pytest.raises(ProvisionError, match="still running after"):
        provision(client, make_settings(tmp_path, action_timeout=0.2))


def test_servers_carry_their_groups_as_labels_and_sit_on_the_network(fake, client, split):
    provision(client, split)
    servers = {s["labels"]["postyard-host"]: s for s in fake.state.resources["servers"].values()}
    assert servers["db1"]["labels"]["postyard-group-db"] == "yes"
    assert all(s["private_net"] for s in servers.values())
    assert {s["image"]["name"] for s in servers.values()} == {"debian-12"}


def test_firewall_rules_equal_the_public_rows_of_the_exposure_table(fake, client, settings):
    provision(client, settings)
    (firewall,) = fake.state.resources["firewalls"].values()
    rules = {(r["port"], r["protocol"]) for r in firewall["rules"]}
    assert rules == {(str(row.port), row.protocol) for row in EXPOSURE if row.public and not row.enabled_by}
    assert all(r["direction"] == "in" for r in firewall["rules"])


def test_ssh_is_open_only_to_the_admin_allowlist_when_one_is_set(fake, client, tmp_path):
    provision(client, make_settings(tmp_path, ssh_admin_allowlist=("198.51.100.7",)))
    (firewall,) = fake.state.resources["firewalls"].values()
    ssh = next(r for r in firewall["rules"] if r["port"] == "22")
    assert ssh["source_ips"] == ["198.51.100.7/32"]


def test_changed_firewall_settings_update_the_rules_in_place(fake, client, tmp_path):
    provision(client, make_settings(tmp_path))
    result = provision(client, make_settings(tmp_path, flags={"acme_http01": True}))
    assert result.changed == ["firewall postyard-production rules"]
    (firewall,) = fake.state.resources["firewalls"].values()
    assert "80" in {r["port"] for r in firewall["rules"]}


def test_reverse_dns_of_every_primary_ip_is_the_host_name(fake, client, settings):
    result = provision(client, settings)
    names = {h.ipv4: h.fqdn for h in result.hosts} | {h.ipv6: h.fqdn for h in result.hosts}
    ptrs = {e["ip"]: e["dns_ptr"] for ip in fake.state.resources["primary_ips"].values() for e in ip["dns_ptr"]}
    assert ptrs == names
    assert ptrs[next(h.ipv4 for h in result.hosts if "mail" in h.groups)] == "mail.example.com"


def test_dns_records_point_mail_at_the_mail_host_and_publish_the_policies(fake, client, settings):
    result = provision(client, settings)
    mail = next(h for h in result.hosts if "mail" in h.groups)
    records = rrsets(fake)
    assert records[("mail", "A")] == [mail.ipv4] and records[("mail", "AAAA")] == [mail.ipv6]
    assert records[("@", "MX")] == ["10 mail.example.com."]
    assert [txt_text(v) for v in records[("@", "TXT")]] == ["v=spf1 mx -all"]
    assert txt_text(records[("_dmarc", "TXT")][0]).startswith("v=DMARC1; p=quarantine")
    assert txt_text(records[("_mta-sts", "TXT")][0]).startswith("v=STSv1; id=")
    assert txt_text(records[("_smtp._tls", "TXT")][0]) == "v=TLSRPTv1; rua=mailto:postmaster@example.com"
    assert records[("@", "CAA")] == ['0 issue "letsencrypt.org"']
    assert records[("mta-sts", "A")] == [mail.ipv4]
    assert records[("_mta-sts", "TXT")] == ['"v=STSv1; id=c0a762642c8ff96deabc"']  # its policy names mail alone


def test_with_two_mail_hosts_the_sending_domain_has_an_mx_for_each(fake, client, tmp_path, monkeypatch):
    monkeypatch.setitem(TOPOLOGIES, "two-mail", (HostPlan("node1", GROUPS), HostPlan("mail2", ("mail",))))
    result = provision(client, make_settings(tmp_path, "two-mail"))
    first, second = (h for h in result.hosts if "mail" in h.groups)
    assert (first.fqdn, second.fqdn) == ("mail.example.com", "mail2.example.com")
    records = rrsets(fake)
    assert sorted(records[("@", "MX")]) == ["10 mail.example.com.", "10 mail2.example.com."]
    assert [txt_text(v) for v in records[("@", "TXT")]] == ["v=spf1 mx -all"]  # `mx`: every MX host
    assert records[("mail2", "A")] == [second.ipv4] and records[("mta-sts", "A")] == [first.ipv4]
    policy = mta_sts_policy("testing", ["mail.example.com", "mail2.example.com"])
    policy_id = txt_text(records[("_mta-sts", "TXT")][0]).removeprefix("v=STSv1; id=")
    assert policy_id == hashlib.sha256(policy.encode()).hexdigest()[:20]
    again = provision(client, make_settings(tmp_path, "two-mail"))
    assert (again.created, again.changed) == ([], [])


def test_the_dkim_record_is_split_into_quoted_strings_of_at_most_255_bytes(fake, client, settings):
    provision(client, settings)
    (value,) = rrsets(fake)[("postyard._domainkey", "TXT")]
    parts = value.split('" "')
    assert len(parts) == 2 and all(len(p.strip('"')) <= 255 for p in parts)
    assert txt_text(value).startswith("v=DKIM1; k=rsa; p=MIIBIjAN")
    key = settings.secrets / "dkim" / "postyard.example.com.key"
    assert key.stat().st_mode & 0o777 == 0o600


def test_api_hosts_sit_behind_a_load_balancer_with_the_proxy_protocol_and_a_health_check(fake, client, split):
    provision(client, split)
    (balancer,) = fake.state.resources["load_balancers"].values()
    https, acme = sorted(balancer["services"], key=lambda service: -service["listen_port"])
    assert (https["protocol"], https["listen_port"], https["destination_port"], https["proxyprotocol"]) == (
        "tcp", 443, API_PROXY_PORT, True)
    assert (acme["protocol"], acme["listen_port"], acme["destination_port"], acme["proxyprotocol"]) == (
        "tcp", 80, 80, False)
    alive = https["health_check"]
    assert (alive["protocol"], alive["port"], alive["http"]["path"]) == (
        "http", API_PROXY_HEALTH_PORT, API_PROXY_HEALTH_PATH)
    assert (acme["health_check"]["protocol"], acme["health_check"]["port"]) == ("tcp", 80)
    targets = fake.api.balancer_view(balancer)["targets"][0]["targets"]
    assert len(targets) == 2
    assert rrsets(fake)[("api", "A")] == [balancer["public_net"]["ipv4"]["ip"]]


def test_an_unlabelled_record_in_the_way_is_not_overwritten(fake, client, settings):
    provision(client, settings)
    (zone_id,) = fake.state.rrsets
    mx = fake.state.rrsets[zone_id][("@", "MX")]
    mx.update(labels={}, records=[{"value": "10 other.example.net."}])
    with pytest.raises(ProvisionError, match="without postyard's labels"):
        provision(client, settings)


def test_the_inventory_names_the_load_balancer_to_the_firewalls_and_the_api_name_to_the_certificates(
        fake, client, split):
    provision(client, split)
    (balancer,) = fake.state.resources["load_balancers"].values()
    (attachment,) = balancer["private_net"]
    entries = dict((name, (groups, data)) for groups, (name, data) in host_entries(client, split))
    assert len(entries) == 5
    for name, (groups, data) in entries.items():
        assert data["load_balancer_private_addresses"] == [attachment["ip"]]
        if "api" in groups:
            assert data["tls_names"] == [name, split.api_host_name]
        else:
            assert "tls_names" not in data


def test_without_a_load_balancer_the_inventory_names_none(fake, client, settings):
    provision(client, settings)
    ((groups, (name, data)),) = host_entries(client, settings)
    assert "load_balancer_private_addresses" not in data and "tls_names" not in data


def test_a_load_balancer_of_an_earlier_version_is_replaced_and_the_api_record_follows(fake, client, split):
    provision(client, split)
    (old,) = fake.state.resources["load_balancers"].values()
    old["services"] = [{**old["services"][0], "destination_port": 443, "proxyprotocol": False}]
    provision(client, split)
    (new,) = fake.state.resources["load_balancers"].values()
    assert new["id"] != old["id"]
    assert {(s["listen_port"], s["destination_port"], s["proxyprotocol"]) for s in new["services"]} == {
        (443, API_PROXY_PORT, True), (80, 80, False)}
    assert rrsets(fake)[("api", "A")] == [new["public_net"]["ipv4"]["ip"]]


def test_ha_gives_every_db_host_a_volume_of_its_own_and_spreads_every_server_over_physical_hosts(fake, client,
                                                                                                tmp_path):
    settings = make_settings(tmp_path, "ha")
    result = provision(client, settings)
    assert counts(fake) == HA
    db_hosts = [h for h in result.hosts if "db" in h.groups]
    assert [h.name for h in db_hosts] == ["db1", "db2", "db3"]
    devices = [h.data_volume for h in db_hosts]
    assert all(devices) and len(set(devices)) == 3
    volumes = {v["labels"]["postyard-host"]: v for v in fake.state.resources["volumes"].values()}
    servers = {s["labels"]["postyard-host"]: s for s in fake.state.resources["servers"].values()}
    assert {name: servers[name]["id"] for name in volumes} == {name: v["server"] for name, v in volumes.items()}
    (group,) = fake.state.resources["placement_groups"].values()
    assert group["type"] == "spread"
    assert {s["_placement_group"] for s in servers.values()} == {group["id"]}
    entries = dict(entry for _, entry in host_entries(client, settings))
    assert sorted(data["data_volume"] for data in entries.values() if "data_volume" in data) == sorted(devices)


def test_a_second_ha_run_creates_and_changes_nothing(fake, client, tmp_path):
    settings = make_settings(tmp_path, "ha")
    provision(client, settings)
    again = provision(client, settings)
    assert (again.created, again.changed) == ([], [])
    assert counts(fake) == HA


def test_every_server_of_split_sits_in_its_one_spread_placement_group(fake, client, split):
    provision(client, split)
    (group,) = fake.state.resources["placement_groups"].values()
    assert fake.api.placement_group_view(group)["servers"] == sorted(fake.state.resources["servers"])


def test_more_servers_than_a_spread_group_holds_are_refused_before_anything_is_created(fake, client, split,
                                                                                      monkeypatch):
    monkeypatch.setattr("postyard.hetzner.provision.SPREAD_LIMIT", 4)
    with pytest.raises(ProvisionError, match="5 servers exceed the 4 of a spread placement group"):
        provision(client, split)
    assert not any(fake.state.resources.values())


def test_a_server_made_before_the_placement_group_is_left_running_and_named(fake, client, tmp_path):
    settings = make_settings(tmp_path, "split")
    provision(client, settings)
    (group,) = fake.state.resources["placement_groups"].values()
    api2 = next(s for s in fake.state.resources["servers"].values() if s["labels"]["postyard-host"] == "api2")
    api2["_placement_group"] = None  # as made by a version without placement groups
    logged: list[str] = []
    again = provision(client, settings, logged.append)
    assert (again.created, again.changed) == ([], [])
    assert api2["status"] == "running" and api2["_placement_group"] is None
    assert any("api2.example.com is outside placement group" in line and "power it off" in line for line in logged)


def test_up_on_hetzner_with_the_ha_topology_provisions_it_through_the_target(fake, tmp_path, monkeypatch):
    fake.state.action_polls = 0  # the target polls every second; the fake's actions finish at once
    for key, value in {"HCLOUD_TOKEN": TOKEN, "HCLOUD_ENDPOINT": fake.endpoint, "POSTYARD_DOMAIN": "example.com",
                       "POSTYARD_SECRETS_DIR": str(tmp_path / "secrets")}.items():
        monkeypatch.setenv(key, value)
    target = make_target("hetzner")
    target.wait_for_ssh = False
    logged: list[str] = []
    target.provision("ha", logged.append)
    assert counts(fake) == HA
    created = [line for line in logged if line.startswith("created ")]
    reverse_dns = [line for line in logged if line.startswith("updated reverse DNS ")]
    assert f"hetzner: {len(created)} created, {len(reverse_dns)} updated" in logged
    assert len(reverse_dns) == 16  # every primary IPv4 and IPv6 of the eight servers
    assert any(line.startswith("created placement group postyard-production (spread") for line in created)
    assert sum(line.startswith("created volume ") for line in created) == 3
