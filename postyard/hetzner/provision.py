"""Bring a deployment's Hetzner resources to the planned state, finding each by its labels."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from ipaddress import ip_network

from hcloud import Client
from hcloud.firewalls import FirewallResource, FirewallResourceLabelSelector, FirewallRule
from hcloud.images import Image
from hcloud.load_balancer_types import LoadBalancerType
from hcloud.load_balancers import (
    LoadBalancerHealthCheck,
    LoadBalancerHealthCheckHttp,
    LoadBalancerService,
    LoadBalancerTarget,
    LoadBalancerTargetLabelSelector,
)
from hcloud.locations import Location
from hcloud.networks import NetworkSubnet
from hcloud.placement_groups import BoundPlacementGroup
from hcloud.primary_ips import BoundPrimaryIP
from hcloud.server_types import ServerType
from hcloud.servers import BoundServer, ServerCreatePublicNetwork
from hcloud.ssh_keys import SSHKey
from hcloud.zones import BoundZone, ZoneRecord

from app.host_layout import API_PROXY_HEALTH_PATH, API_PROXY_HEALTH_PORT, API_PROXY_PORT
from postyard.hetzner import labels as L
from postyard.hetzner.client import ProvisionError, api_errors, delete_load_balancer, wait_for
from postyard.hetzner.dns import MailDns, RRSet, mail_records
from postyard.hetzner.firewall import inbound_rules, rules_payload
from postyard.hetzner.secrets import dkim_public_key, secrets_directory, ssh_keypair
from postyard.hetzner.settings import HetznerSettings, PlannedHost, plan_hosts

__all__ = ["ProvisionedHost", "Provisioned", "provision", "ipv6_host_address", "SPREAD_LIMIT"]

Log = Callable[[str], None]

# Hetzner puts each server of a spread placement group on a physical host of its own, for at most this many.
SPREAD_LIMIT = 10


def ipv6_host_address(network: str) -> str:
    """The server's address in its primary IPv6 /64: the network's ::1."""
    return str(ip_network(network, strict=False)[1])


@dataclass(frozen=True)
class ProvisionedHost:
    """A server as the inventory sees it."""

    name: str
    fqdn: str
    groups: tuple[str, ...]
    ipv4: str
    ipv6: str
    private_address: str
    data_volume: str | None = None


@dataclass
class Provisioned:
    """What the run found or made: hosts, and how many resources it created or changed."""

    hosts: list[ProvisionedHost] = field(default_factory=list)
    created: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)


class _Run:
    """One provisioning run: the client, the settings, and a record of what it did."""

    def __init__(self, client: Client, settings: HetznerSettings, log: Log):
        self.client, self.s, self.log = client, settings, log
        self.result = Provisioned()

    def labels(self, role: str, host: str | None = None, groups: tuple[str, ...] = ()) -> dict[str, str]:
        return L.resource_labels(self.s.project, self.s.environment, role, host, groups)

    def select(self, role: str, host: str | None = None) -> str:
        return L.selector(self.labels(role, host))

    def wait(self, actions, what: str) -> None:
        wait_for(self.client, actions, what, self.s.action_timeout, self.s.poll_interval)

    def created(self, what: str) -> None:
        self.result.created.append(what)
        self.log(f"created {what}")

    def changed(self, what: str) -> None:
        self.result.changed.append(what)
        self.log(f"updated {what}")

    def one(self, found: list, what: str):
        if len(found) > 1:
            raise ProvisionError(f"{len(found)} resources carry the labels of {what}; remove the extra ones")
        return found[0] if found else None

    @property
    def name(self) -> str:
        return f"{self.s.project}-{self.s.environment}"

    # resources, in dependency order

    def check_types(self, hosts: tuple[PlannedHost, ...]) -> None:
        for host in hosts:
            with api_errors(f"look up server type {host.server_type}"):
                found = self.client.server_types.get_by_name(host.server_type)
            if found is None:
                raise ProvisionError(f"server type {host.server_type!r} (for {host.fqdn}) does not exist")
            available = {entry.location.name for entry in found.locations or []}
            if host.location not in available:
                raise ProvisionError(
                    f"server type {host.server_type} is not offered in location {host.location} "
                    f"(for {host.fqdn}); offered in: {', '.join(sorted(available)) or 'none'}")

    def ssh_key(self):
        _, public = ssh_keypair(secrets_directory(self.s.secrets))
        with api_errors("find the SSH key"):
            key = self.one(self.client.ssh_keys.get_all(label_selector=self.select("ssh-key")), "the SSH key")
        if key is None:
            with api_errors("create the SSH key"):
                key = self.client.ssh_keys.create(name=self.name, public_key=public, labels=self.labels("ssh-key"))
            self.created(f"ssh key {self.name}")
        return key

    def network(self):
        with api_errors("find the private network"):
            network = self.one(self.client.networks.get_all(label_selector=self.select("network")),
                               "the private network")
        if network is None:
            with api_errors("create the private network"):
                network = self.client.networks.create(
                    name=self.name, ip_range=self.s.network_ip_range, labels=self.labels("network"),
                    subnets=[NetworkSubnet(type="cloud", ip_range=self.s.subnet_ip_range,
                                           network_zone=self.s.network_zone)])
            self.created(f"network {self.name} with subnet {self.s.subnet_ip_range}")
        elif not any(sub.ip_range == self.s.subnet_ip_range for sub in network.subnets or []):
            with api_errors("add the subnet"):
                action = network.add_subnet(NetworkSubnet(type="cloud", ip_range=self.s.subnet_ip_range,
                                                          network_zone=self.s.network_zone))
            self.wait([action], "add the subnet")
            self.changed(f"network {self.name}: subnet {self.s.subnet_ip_range}")
        return network

    def firewall(self):
        rules = inbound_rules(self.s.flags, self.s.ssh_admin_allowlist)
        wanted = rules_payload(rules)
        objects = [FirewallRule(direction="in", protocol=r.protocol, port=r.port, source_ips=list(r.source_ips),
                                destination_ips=[], description=r.description) for r in rules]
        with api_errors("find the firewall"):
            firewall = self.one(self.client.firewalls.get_all(label_selector=self.select("firewall")), "the firewall")
        if firewall is None:
            servers = L.selector(self.labels("server"))
            with api_errors("create the firewall"):
                response = self.client.firewalls.create(
                    name=self.name, rules=objects, labels=self.labels("firewall"),
                    resources=[FirewallResource(type="label_selector",
                                                label_selector=FirewallResourceLabelSelector(selector=servers))])
            self.wait(response.actions or [], "create the firewall")
            self.created(f"firewall {self.name} ({len(rules)} inbound rules)")
            return response.firewall
        current = [{"direction": r.direction, "protocol": r.protocol, "port": r.port,
                    "source_ips": list(r.source_ips or []), "destination_ips": list(r.destination_ips or []),
                    "description": r.description} for r in firewall.rules or []]
        if _canonical(current) != _canonical(wanted):
            with api_errors("set the firewall rules"):
                actions = firewall.set_rules(objects)
            self.wait(actions, "set the firewall rules")
            self.changed(f"firewall {self.name} rules")
        return firewall

    def primary_ip(self, host: PlannedHost, kind: str) -> BoundPrimaryIP:
        role = kind  # "ipv4" or "ipv6"
        with api_errors(f"find the {kind} of {host.fqdn}"):
            found = self.one(self.client.primary_ips.get_all(label_selector=self.select(role, host.name)),
                             f"the {kind} of {host.fqdn}")
        if found is None:
            # The API description requires assignee_type, which hcloud 2.27 leaves out without an
            # assignee, so this one request goes through the client's plain request method.
            with api_errors(f"create the {kind} of {host.fqdn}"):
                response = self.client.request("POST", "/primary_ips", json={
                    "type": kind, "name": f"{host.fqdn}-{kind}", "location": host.location,
                    "assignee_type": "server", "auto_delete": False, "labels": self.labels(role, host.name)})
                found = self.client.primary_ips.get_by_id(response["primary_ip"]["id"])
            if response.get("action"):
                self.wait([self.client.actions.get_by_id(response["action"]["id"])],
                          f"create the {kind} of {host.fqdn}")
            self.created(f"primary {kind} {found.ip} for {host.fqdn}")
        return found

    def placement_group(self, hosts: tuple[PlannedHost, ...]) -> BoundPlacementGroup | None:
        """With several servers, one spread group, so that one physical host's failure takes down one server:
        one db member of three, one api host of two."""
        if len(hosts) < 2:
            return None
        with api_errors("find the placement group"):
            group = self.one(self.client.placement_groups.get_all(label_selector=self.select("placement-group")),
                             "the placement group")
        if group is None:
            with api_errors("create the placement group"):
                response = self.client.placement_groups.create(
                    name=self.name, type="spread", labels=self.labels("placement-group"))
            if response.action:
                self.wait([response.action], "create the placement group")
            self.created(f"placement group {self.name} (spread: each server on a physical host of its own)")
            group = response.placement_group
        return group

    def server(self, host: PlannedHost, key, network, ipv4, ipv6,
               spread: BoundPlacementGroup | None = None) -> BoundServer:
        with api_errors(f"find server {host.fqdn}"):
            server = self.one(self.client.servers.get_all(label_selector=self.select("server", host.name)),
                              f"server {host.fqdn}")
        if server is None:
            with api_errors(f"create server {host.fqdn}"):
                response = self.client.servers.create(
                    name=host.fqdn, server_type=ServerType(name=host.server_type), image=Image(name=self.s.image),
                    ssh_keys=[SSHKey(name=key.name)], networks=[network], location=Location(name=host.location),
                    labels=self.labels("server", host.name, host.groups), placement_group=spread,
                    public_net=ServerCreatePublicNetwork(ipv4=ipv4, ipv6=ipv6))
            self.wait([response.action, *(response.next_actions or [])], f"create server {host.fqdn}")
            self.created(f"server {host.fqdn} ({host.server_type} in {host.location})")
            server = self.client.servers.get_by_id(response.server.id)
        elif not any(net.network.id == network.id for net in server.private_net or []):
            with api_errors(f"attach {host.fqdn} to the network"):
                action = server.attach_to_network(network)
            self.wait([action], f"attach {host.fqdn} to the network")
            self.changed(f"server {host.fqdn}: attached to the network")
            server = self.client.servers.get_by_id(server.id)
        if spread is not None and (server.placement_group is None or server.placement_group.id != spread.id):
            # Hetzner moves only a server that is off; provisioning never powers a running one off.
            self.log(f"note: {host.fqdn} is outside placement group {spread.name}; to move it, power it off and "
                     f"add it (hcloud server add-to-placement-group), then power it on")
        return server

    def reverse_dns(self, host: PlannedHost, ip: BoundPrimaryIP) -> None:
        address = ip.ip if ip.type == "ipv4" else ipv6_host_address(ip.ip)
        current = {entry["ip"]: entry["dns_ptr"] for entry in ip.dns_ptr or []}
        if current.get(address) != host.fqdn:
            with api_errors(f"set reverse DNS of {address}"):
                action = ip.change_dns_ptr(ip=address, dns_ptr=host.fqdn)
            self.wait([action], f"set reverse DNS of {address}")
            self.changed(f"reverse DNS {address} -> {host.fqdn}")

    def volume(self, host: PlannedHost, server: BoundServer) -> str:
        with api_errors(f"find the data volume of {host.fqdn}"):
            volume = self.one(self.client.volumes.get_all(label_selector=self.select("volume", host.name)),
                              f"the data volume of {host.fqdn}")
        if volume is None:
            with api_errors(f"create the data volume of {host.fqdn}"):
                response = self.client.volumes.create(
                    size=self.s.volume_size, name=f"{self.name}-{host.name}-data",
                    labels=self.labels("volume", host.name), server=server, automount=False)
            self.wait([response.action, *(response.next_actions or [])], f"create the data volume of {host.fqdn}")
            self.created(f"volume {response.volume.name} ({self.s.volume_size} GB) on {host.fqdn}")
            volume = response.volume
        elif volume.server is None or volume.server.id != server.id:
            with api_errors(f"attach the data volume to {host.fqdn}"):
                action = volume.attach(server, automount=False)
            self.wait([action], f"attach the data volume to {host.fqdn}")
            self.changed(f"volume {volume.name}: attached to {host.fqdn}")
        return volume.linux_device

    def balancer_services(self) -> list[LoadBalancerService]:
        # Every 3 s, out after two failures; Hetzner's balancer does not send a refused connection on to another.
        timing = {"interval": 3, "timeout": 2, "retries": 2}
        alive = LoadBalancerHealthCheck(
            protocol="http", port=API_PROXY_HEALTH_PORT, **timing,
            http=LoadBalancerHealthCheckHttp(domain=self.s.api_host_name, path=API_PROXY_HEALTH_PATH,
                                             status_codes=["200"], tls=False))
        return [
            # The PROXY protocol names the client to each api host's proxy (roles/api_proxy.py); its health port
            # answers 200 while the API on that host is alive.
            LoadBalancerService(protocol="tcp", listen_port=443, destination_port=API_PROXY_PORT,
                                proxyprotocol=True, health_check=alive),
            # ACME HTTP-01 for the API's name, to the api hosts' relays, which run before the API first does.
            LoadBalancerService(protocol="tcp", listen_port=80, destination_port=80, proxyprotocol=False,
                                health_check=LoadBalancerHealthCheck(protocol="tcp", port=80, **timing)),
        ]

    @staticmethod
    def service_shapes(services) -> set[tuple[str, int, int, bool]]:
        return {(s.protocol, s.listen_port, s.destination_port, bool(s.proxyprotocol)) for s in services or []}

    def load_balancer(self, network, location: str):
        wanted = self.balancer_services()
        with api_errors("find the load balancer"):
            balancer = self.one(self.client.load_balancers.get_all(label_selector=self.select("load-balancer")),
                                "the load balancer")
        if balancer is not None and not self.service_shapes(wanted) <= self.service_shapes(balancer.services):
            # One made before the PROXY protocol: made again (its address changes; the DNS records follow).
            with api_errors("replace the load balancer"):
                deleted = delete_load_balancer(self.client, balancer.id)
            self.wait([deleted], "replace the load balancer")
            self.changed(f"load balancer {balancer.name}: replaced, its services were another version's")
            balancer = None
        if balancer is None:
            api = L.selector({**L.base_labels(self.s.project, self.s.environment), f"{L.GROUP_PREFIX}api": "yes"})
            with api_errors("create the load balancer"):
                response = self.client.load_balancers.create(
                    name=f"{self.name}-api", load_balancer_type=LoadBalancerType(name=self.s.load_balancer_type),
                    location=Location(name=location), network=network, labels=self.labels("load-balancer"),
                    services=wanted,
                    targets=[LoadBalancerTarget(type="label_selector", use_private_ip=True,
                                                label_selector=LoadBalancerTargetLabelSelector(selector=api))])
            self.wait([response.action], "create the load balancer")
            self.created(f"load balancer {self.name}-api (tcp 443 to the api hosts' proxies, 80 for ACME)")
            balancer = self.client.load_balancers.get_by_id(response.load_balancer.id)
        return balancer

    def zone(self) -> BoundZone:
        with api_errors(f"find DNS zone {self.s.domain}"):
            found = self.client.zones.get_all(name=self.s.domain)
        if found:
            return found[0]
        with api_errors(f"create DNS zone {self.s.domain}"):
            response = self.client.zones.create(name=self.s.domain, mode="primary", labels=self.labels("zone"))
        self.wait([response.action], f"create DNS zone {self.s.domain}")
        self.created(f"DNS zone {self.s.domain} (delegate the domain to Hetzner's name servers)")
        return response.zone

    def rrsets(self, zone: BoundZone, wanted: tuple[RRSet, ...]) -> None:
        with api_errors(f"list records of {zone.name}"):
            existing = {(r.name, r.type): r for r in self.client.zones.get_rrset_all(zone)}
        for rrset in wanted:
            label = f"{rrset.type} {rrset.name}"
            current = existing.get(rrset.key)
            records = [ZoneRecord(value=value) for value in rrset.values]
            if current is None:
                with api_errors(f"create DNS record {label}"):
                    response = self.client.zones.create_rrset(
                        zone, name=rrset.name, type=rrset.type, records=records, labels=self.labels("dns"))
                self.wait([response.action], f"create DNS record {label}")
                self.created(f"DNS {label}")
            elif sorted(r.value for r in current.records or []) != sorted(rrset.values):
                if not L.is_ours(current.labels, self.s.project, self.s.environment):
                    raise ProvisionError(
                        f"DNS record {label} in {zone.name} exists without postyard's labels; "
                        "remove it (or add the labels) so postyard may manage it")
                with api_errors(f"set DNS record {label}"):
                    action = self.client.zones.set_rrset_records(current, records)
                self.wait([action], f"set DNS record {label}")
                self.changed(f"DNS {label}")

    def run(self) -> Provisioned:
        planned = plan_hosts(self.s)
        if len(planned) > SPREAD_LIMIT:
            raise ProvisionError(f"{len(planned)} servers exceed the {SPREAD_LIMIT} of a spread placement group")
        self.check_types(planned)
        key = self.ssh_key()
        network = self.network()
        self.firewall()
        spread = self.placement_group(planned)
        servers: dict[str, BoundServer] = {}
        for host in planned:
            ipv4, ipv6 = self.primary_ip(host, "ipv4"), self.primary_ip(host, "ipv6")
            server = self.server(host, key, network, ipv4, ipv6, spread)
            servers[host.name] = server
            for ip in (ipv4, ipv6):
                with api_errors(f"read the {ip.type} of {host.fqdn}"):
                    self.reverse_dns(host, self.client.primary_ips.get_by_id(ip.id))
            device = self.volume(host, server) if "db" in host.groups else None
            private = next((net.ip for net in server.private_net or [] if net.network.id == network.id), "")
            self.result.hosts.append(ProvisionedHost(
                host.name, host.fqdn, host.groups, ipv4.ip, ipv6_host_address(ipv6.ip), private, device))
        api_hosts = [h for h in self.result.hosts if "api" in h.groups]
        api_addresses = (api_hosts[0].ipv4, api_hosts[0].ipv6) if api_hosts else None
        if len(api_hosts) > 1:
            first_api = next(h for h in planned if "api" in h.groups)
            balancer = self.load_balancer(network, first_api.location)
            api_addresses = (balancer.public_net.ipv4.ip, balancer.public_net.ipv6.ip)
        self.dns(api_addresses)
        return self.result

    def dns(self, api_addresses: tuple[str, str] | None) -> None:
        addresses = {h.fqdn: (h.ipv4, h.ipv6) for h in self.result.hosts}
        records = mail_records(MailDns(
            zone=self.s.domain, sending_domain=self.s.sending_domain, mail_hostname=self.s.mail_host_name,
            host_addresses=addresses, api_hostname=self.s.api_host_name, api_addresses=api_addresses,
            dkim_selector=self.s.dkim_selector,
            dkim_public_key=dkim_public_key(self.s.secrets, self.s.sending_domain, self.s.dkim_selector),
            dmarc_policy=self.s.dmarc_policy, mta_sts_mode=self.s.mta_sts_mode,
            mail_hostnames=tuple(h.fqdn for h in self.result.hosts if "mail" in h.groups)))
        self.rrsets(self.zone(), records)


def _canonical(rules: list[dict]) -> list[tuple]:
    return sorted((r["direction"], r["protocol"], r["port"], tuple(sorted(r["source_ips"])),
                   tuple(sorted(r["destination_ips"])), r.get("description") or "") for r in rules)


def provision(client: Client, settings: HetznerSettings, log: Log = lambda _: None) -> Provisioned:
    """Create what is missing and correct what differs; a second run creates and changes nothing."""
    return _Run(client, settings, log).run()
