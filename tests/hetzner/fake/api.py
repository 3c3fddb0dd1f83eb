"""The fake's endpoints: the part of the Hetzner Cloud API that provisioning and teardown use."""

from __future__ import annotations

import re
from collections.abc import Callable
from ipaddress import ip_network
from typing import Any

from tests.hetzner.fake import catalog
from tests.hetzner.fake.state import NOW, ApiError, State, fingerprint, matches_selector, public

__all__ = ["FakeApi"]

Handler = Callable[..., tuple[int, dict[str, Any]]]
ROUTES: list[tuple[str, re.Pattern[str], str]] = []


def route(method: str, pattern: str) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        ROUTES.append((method, re.compile(f"^{pattern}$"), handler.__name__))
        return handler
    return register


class FakeApi:
    """Stateful handlers; `limits` caps resource counts (resource_limit_exceeded)."""

    def __init__(self) -> None:
        self.state = State()
        self.limits: dict[str, int] = {}
        self.max_per_page = 50

    # plumbing

    def handle(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> tuple[int, dict[str, Any]]:
        for verb, pattern, name in ROUTES:
            found = pattern.match(path)
            if verb == method and found:
                return getattr(self, name)(query, body, *found.groups())
        raise ApiError(404, "not_found", f"no route {method} {path}")

    def page(self, key: str, items: list[dict[str, Any]], query: dict[str, list[str]]) -> tuple[int, dict]:
        if "label_selector" in query:
            items = [i for i in items if matches_selector(i.get("labels") or {}, query["label_selector"][0])]
        if "name" in query:
            items = [i for i in items if i.get("name") == query["name"][0]]
        per_page = min(int(query.get("per_page", ["25"])[0]), self.max_per_page)
        page = int(query.get("page", ["1"])[0])
        last = max(1, -(-len(items) // per_page))
        chunk = items[(page - 1) * per_page: page * per_page]
        meta = {"pagination": {"page": page, "per_page": per_page, "previous_page": page - 1 if page > 1 else None,
                               "next_page": page + 1 if page < last else None, "last_page": last,
                               "total_entries": len(items)}}
        return 200, {key: chunk, "meta": meta}

    def limit(self, kind: str) -> None:
        if kind in self.limits and self.state.count(kind) >= self.limits[kind]:
            raise ApiError(403, "resource_limit_exceeded", f"{kind} limit of {self.limits[kind]} exceeded")

    def new(self, kind: str, item: dict[str, Any]) -> dict[str, Any]:
        self.limit(kind)
        if "name" in item:
            self.state.unique(kind, item["name"])
        item.setdefault("id", self.state.next_id())
        self.state.resources[kind][item["id"]] = item
        return item

    # read-only catalogue

    @route("GET", "/actions/(\\d+)")
    def get_action(self, query, body, rid):
        return 200, {"action": self.state.read_action(int(rid))}

    @route("GET", "/server_types")
    def list_server_types(self, query, body):
        return self.page("server_types", [catalog.server_type(n) for n in catalog.SERVER_TYPES], query)

    # ssh keys

    @route("GET", "/ssh_keys")
    def list_ssh_keys(self, query, body):
        return self.page("ssh_keys", list(self.state.resources["ssh_keys"].values()), query)

    @route("POST", "/ssh_keys")
    def create_ssh_key(self, query, body):
        self.state.unique("ssh_keys", fingerprint(body["public_key"]), "fingerprint")
        key = self.new("ssh_keys", {"name": body["name"], "public_key": body["public_key"],
                                    "fingerprint": fingerprint(body["public_key"]),
                                    "labels": body.get("labels", {}), "created": NOW})
        return 201, {"ssh_key": key}

    @route("DELETE", "/ssh_keys/(\\d+)")
    def delete_ssh_key(self, query, body, rid):
        self.state.get("ssh_keys", int(rid))
        del self.state.resources["ssh_keys"][int(rid)]
        return 204, {}

    # networks

    def network_view(self, network: dict[str, Any]) -> dict[str, Any]:
        servers = [s["id"] for s in self.state.resources["servers"].values()
                   if any(n["network"] == network["id"] for n in s["private_net"])]
        balancers = [b["id"] for b in self.state.resources["load_balancers"].values()
                     if any(n["network"] == network["id"] for n in b["private_net"])]
        return {**public(network), "servers": servers, "load_balancers": balancers}

    @route("GET", "/networks")
    def list_networks(self, query, body):
        return self.page("networks", [self.network_view(n) for n in self.state.resources["networks"].values()], query)

    @route("GET", "/networks/(\\d+)")
    def get_network(self, query, body, rid):
        return 200, {"network": self.network_view(self.state.get("networks", int(rid)))}

    def subnet(self, network: dict[str, Any], subnet: dict[str, Any]) -> dict[str, Any]:
        return {"type": subnet["type"], "ip_range": subnet["ip_range"], "network_zone": subnet["network_zone"],
                "gateway": str(ip_network(network["ip_range"])[1]), "vswitch_id": None}

    @route("POST", "/networks")
    def create_network(self, query, body):
        network = {"name": body["name"], "ip_range": body["ip_range"], "labels": body.get("labels", {}),
                   "routes": [], "expose_routes_to_vswitch": False, "protection": {"delete": False},
                   "created": NOW, "subnets": []}
        network["subnets"] = [self.subnet(network, s) for s in body.get("subnets", [])]
        return 201, {"network": self.network_view(self.new("networks", network))}

    @route("POST", "/networks/(\\d+)/actions/add_subnet")
    def add_subnet(self, query, body, rid):
        network = self.state.get("networks", int(rid))
        network["subnets"].append(self.subnet(network, body))
        return 201, {"action": self.state.action("add_subnet", (network["id"], "network"))}

    @route("DELETE", "/networks/(\\d+)")
    def delete_network(self, query, body, rid):
        view = self.network_view(self.state.get("networks", int(rid)))
        if view["servers"] or view["load_balancers"]:
            raise ApiError(422, "resource_in_use", "network has attached resources")
        del self.state.resources["networks"][int(rid)]
        return 204, {}

    # firewalls

    def firewall_view(self, firewall: dict[str, Any]) -> dict[str, Any]:
        applied = []
        for target in firewall["_apply_to"]:
            if target["type"] == "server":
                applied.append({"type": "server", "server": {"id": target["server"]["id"]}})
                continue
            selector = target["label_selector"]["selector"]
            matched = [{"type": "server", "server": {"id": s["id"]}}
                       for s in self.state.resources["servers"].values() if matches_selector(s["labels"], selector)]
            applied.append({"type": "label_selector", "label_selector": {"selector": selector},
                            "applied_to_resources": matched})
        return {**public(firewall), "applied_to": applied}

    @route("GET", "/firewalls")
    def list_firewalls(self, query, body):
        return self.page("firewalls", [self.firewall_view(f) for f in self.state.resources["firewalls"].values()],
                         query)

    @route("GET", "/firewalls/(\\d+)")
    def get_firewall(self, query, body, rid):
        return 200, {"firewall": self.firewall_view(self.state.get("firewalls", int(rid)))}

    @staticmethod
    def rules(rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{"direction": r["direction"], "protocol": r["protocol"], "port": r.get("port"),
                 "source_ips": r.get("source_ips", []), "destination_ips": r.get("destination_ips", []),
                 "description": r.get("description")} for r in rules]

    @route("POST", "/firewalls")
    def create_firewall(self, query, body):
        firewall = self.new("firewalls", {"name": body["name"], "labels": body.get("labels", {}),
                                          "rules": self.rules(body.get("rules", [])), "created": NOW,
                                          "_apply_to": list(body.get("apply_to", []))})
        actions = [self.state.action("set_firewall_rules", (firewall["id"], "firewall"))]
        if firewall["_apply_to"]:
            actions.append(self.state.action("apply_firewall", (firewall["id"], "firewall")))
        return 201, {"firewall": self.firewall_view(firewall), "actions": actions}

    @route("POST", "/firewalls/(\\d+)/actions/set_rules")
    def set_rules(self, query, body, rid):
        firewall = self.state.get("firewalls", int(rid))
        firewall["rules"] = self.rules(body["rules"])
        return 201, {"actions": [self.state.action("set_firewall_rules", (firewall["id"], "firewall"))]}

    @route("POST", "/firewalls/(\\d+)/actions/remove_from_resources")
    def remove_from_resources(self, query, body, rid):
        firewall = self.state.get("firewalls", int(rid))
        for target in body["remove_from"]:
            firewall["_apply_to"] = [t for t in firewall["_apply_to"]
                                     if {k: v for k, v in t.items() if k != "applied_to_resources"} != target]
        return 201, {"actions": [self.state.action("remove_firewall", (firewall["id"], "firewall"))]}

    @route("DELETE", "/firewalls/(\\d+)")
    def delete_firewall(self, query, body, rid):
        view = self.firewall_view(self.state.get("firewalls", int(rid)))
        if any(a["type"] == "server" or a["applied_to_resources"] for a in view["applied_to"]):
            raise ApiError(422, "resource_in_use", "firewall is still applied to resources")
        del self.state.resources["firewalls"][int(rid)]
        return 204, {}

    # primary IPs

    @route("GET", "/primary_ips")
    def list_primary_ips(self, query, body):
        return self.page("primary_ips", [public(p) for p in self.state.resources["primary_ips"].values()], query)

    @route("GET", "/primary_ips/(\\d+)")
    def get_primary_ip(self, query, body, rid):
        return 200, {"primary_ip": public(self.state.get("primary_ips", int(rid)))}

    @route("POST", "/primary_ips")
    def create_primary_ip(self, query, body):
        n = self.state.next_address()
        ip = f"203.0.113.{n}" if body["type"] == "ipv4" else f"2001:db8:{n:x}::/64"
        loc = body.get("location") or "fsn1"
        item = self.new("primary_ips", {
            "name": body["name"], "type": body["type"], "ip": ip, "labels": body.get("labels", {}),
            "assignee_type": "server", "assignee_id": body.get("assignee_id"),
            "auto_delete": body.get("auto_delete", False), "blocked": False, "created": NOW,
            "protection": {"delete": False}, "datacenter": catalog.datacenter(loc), "location": catalog.location(loc),
            "dns_ptr": [{"ip": ip, "dns_ptr": "static.example.hetzner"}] if body["type"] == "ipv4" else []})
        return 201, {"primary_ip": public(item),
                     "action": self.state.action("create_primary_ip", (item["id"], "primary_ip"))}

    @route("POST", "/primary_ips/(\\d+)/actions/change_dns_ptr")
    def change_primary_ip_dns_ptr(self, query, body, rid):
        item = self.state.get("primary_ips", int(rid))
        entries = [e for e in item["dns_ptr"] if e["ip"] != body["ip"]]
        if body.get("dns_ptr"):
            entries.append({"ip": body["ip"], "dns_ptr": body["dns_ptr"]})
        item["dns_ptr"] = entries
        return 201, {"action": self.state.action("change_dns_ptr", (item["id"], "primary_ip"))}

    @route("DELETE", "/primary_ips/(\\d+)")
    def delete_primary_ip(self, query, body, rid):
        item = self.state.get("primary_ips", int(rid))
        if item["assignee_id"] is not None:
            raise ApiError(422, "must_be_unassigned", "primary IP is assigned")
        del self.state.resources["primary_ips"][int(rid)]
        return 204, {}

    # placement groups

    SPREAD_LIMIT = 10

    def placement_group_view(self, group: dict[str, Any]) -> dict[str, Any]:
        members = [s["id"] for s in self.state.resources["servers"].values() if s["_placement_group"] == group["id"]]
        return {**public(group), "servers": members}

    @route("GET", "/placement_groups")
    def list_placement_groups(self, query, body):
        return self.page("placement_groups", [self.placement_group_view(g)
                                              for g in self.state.resources["placement_groups"].values()], query)

    @route("GET", "/placement_groups/(\\d+)")
    def get_placement_group(self, query, body, rid):
        return 200, {"placement_group": self.placement_group_view(self.state.get("placement_groups", int(rid)))}

    @route("POST", "/placement_groups")
    def create_placement_group(self, query, body):
        if body["type"] != "spread":
            raise ApiError(400, "invalid_input", f"placement group type {body['type']} is not spread")
        group = self.new("placement_groups", {"name": body["name"], "type": body["type"],
                                              "labels": body.get("labels", {}), "created": NOW})
        return 201, {"placement_group": self.placement_group_view(group), "action": None}

    @route("DELETE", "/placement_groups/(\\d+)")
    def delete_placement_group(self, query, body, rid):
        group = self.state.get("placement_groups", int(rid))
        if self.placement_group_view(group)["servers"]:
            raise ApiError(422, "resource_in_use", "placement group still has servers")
        del self.state.resources["placement_groups"][group["id"]]
        return 204, {}

    # servers

    def server_view(self, server: dict[str, Any]) -> dict[str, Any]:
        ips = {p["type"]: p for p in self.state.resources["primary_ips"].values() if p["assignee_id"] == server["id"]}
        firewalls = [{"id": f["id"], "status": "applied"} for f in self.state.resources["firewalls"].values()
                     if any(a.get("server", {}).get("id") == server["id"]
                            for t in self.firewall_view(f)["applied_to"]
                            for a in ([t] if t["type"] == "server" else t["applied_to_resources"]))]
        ipv4 = ips.get("ipv4")
        ipv6 = ips.get("ipv6")
        public_net = {
            "ipv4": {"id": ipv4["id"], "ip": ipv4["ip"], "blocked": False,
                     "dns_ptr": next((e["dns_ptr"] for e in ipv4["dns_ptr"] if e["ip"] == ipv4["ip"]), "")}
            if ipv4 else None,
            "ipv6": {"id": ipv6["id"], "ip": ipv6["ip"], "blocked": False, "dns_ptr": ipv6["dns_ptr"]}
            if ipv6 else None,
            "floating_ips": [], "firewalls": firewalls}
        volumes = [v["id"] for v in self.state.resources["volumes"].values() if v["server"] == server["id"]]
        balancers = [b["id"] for b in self.state.resources["load_balancers"].values()
                     if server["id"] in self.balancer_server_ids(b)]
        group = self.state.resources["placement_groups"].get(server["_placement_group"])
        return {**public(server), "public_net": public_net, "volumes": volumes, "load_balancers": balancers,
                "placement_group": self.placement_group_view(group) if group else None}

    @route("GET", "/servers")
    def list_servers(self, query, body):
        return self.page("servers", [self.server_view(s) for s in self.state.resources["servers"].values()], query)

    @route("GET", "/servers/(\\d+)")
    def get_server(self, query, body, rid):
        return 200, {"server": self.server_view(self.state.get("servers", int(rid)))}

    def private_ip(self, network: dict[str, Any]) -> str:
        subnet = ip_network(network["subnets"][0]["ip_range"])
        return str(subnet[self.state.next_address()])

    @route("POST", "/servers")
    def create_server(self, query, body):
        type_name, loc = body["server_type"], body.get("location") or "fsn1"
        if type_name not in catalog.SERVER_TYPES:
            raise ApiError(422, "invalid_input", f"server type {type_name} not found")
        if loc not in [entry["name"] for entry in catalog.server_type(type_name)["locations"]]:
            raise ApiError(422, "invalid_input", f"server type {type_name} is not available in {loc}")
        if body["image"] not in catalog.IMAGES:
            raise ApiError(422, "invalid_input", f"image {body['image']} not found")
        self.limit("servers")
        self.state.unique("servers", body["name"])
        networks = [self.state.get("networks", n) for n in body.get("networks", [])]
        group = body.get("placement_group")
        if group is not None:
            members = self.placement_group_view(self.state.get("placement_groups", group))["servers"]
            if len(members) >= self.SPREAD_LIMIT:
                raise ApiError(422, "service_error", f"placement group {group} contains already {len(members)} servers")
        server = self.new("servers", {"_placement_group": group,
            "name": body["name"], "status": "running", "created": NOW, "labels": body.get("labels", {}),
            "server_type": catalog.server_type(type_name), "datacenter": catalog.datacenter(loc),
            "location": catalog.location(loc), "image": catalog.image(body["image"]), "iso": None,
            "rescue_enabled": False, "locked": False, "backup_window": None, "outgoing_traffic": 0,
            "ingoing_traffic": 0, "included_traffic": 21990232555520, "primary_disk_size": 40,
            "protection": {"delete": False, "rebuild": False},
            "private_net": [{"network": n["id"], "ip": self.private_ip(n), "alias_ips": [],
                             "mac_address": "86:00:00:00:00:01"} for n in networks]})
        public_net = body.get("public_net", {})
        for kind in ("ipv4", "ipv6"):
            wanted = public_net.get(kind)
            if wanted is None and public_net.get(f"enable_{kind}", True):
                wanted = self.create_primary_ip({}, {"type": kind, "name": f"{body['name']}-{kind}",
                                                     "location": loc, "auto_delete": True})[1]["primary_ip"]["id"]
            if wanted is not None:
                item = self.state.get("primary_ips", wanted)
                if item["assignee_id"] is not None:
                    raise ApiError(422, "primary_ip_assigned", f"primary IP {wanted} is already assigned")
                item["assignee_id"] = server["id"]
        for rid in body.get("volumes", []):
            self.state.get("volumes", rid)["server"] = server["id"]
        action = self.state.action("create_server", (server["id"], "server"))
        following = [self.state.action("start_server", (server["id"], "server"))]
        return 201, {"server": self.server_view(server), "action": action, "next_actions": following,
                     "root_password": None}

    @route("POST", "/servers/(\\d+)/actions/attach_to_network")
    def attach_server_to_network(self, query, body, rid):
        server = self.state.get("servers", int(rid))
        network = self.state.get("networks", body["network"])
        server["private_net"].append({"network": network["id"], "ip": body.get("ip") or self.private_ip(network),
                                      "alias_ips": [], "mac_address": "86:00:00:00:00:02"})
        return 201, {"action": self.state.action("attach_to_network", (server["id"], "server"))}

    @route("DELETE", "/servers/(\\d+)")
    def delete_server(self, query, body, rid):
        server = self.state.get("servers", int(rid))
        action = self.state.action("delete_server", (server["id"], "server"))
        for ip in list(self.state.resources["primary_ips"].values()):
            if ip["assignee_id"] == server["id"]:
                ip["assignee_id"] = None
                if ip["auto_delete"]:
                    del self.state.resources["primary_ips"][ip["id"]]
        for volume in self.state.resources["volumes"].values():
            if volume["server"] == server["id"]:
                volume["server"] = None
        for firewall in self.state.resources["firewalls"].values():
            firewall["_apply_to"] = [t for t in firewall["_apply_to"] if t.get("server", {}).get("id") != server["id"]]
        del self.state.resources["servers"][server["id"]]
        return 200, {"action": action}

    # volumes

    @route("GET", "/volumes")
    def list_volumes(self, query, body):
        return self.page("volumes", [public(v) for v in self.state.resources["volumes"].values()], query)

    @route("GET", "/volumes/(\\d+)")
    def get_volume(self, query, body, rid):
        return 200, {"volume": public(self.state.get("volumes", int(rid)))}

    @route("POST", "/volumes")
    def create_volume(self, query, body):
        server = self.state.get("servers", body["server"]) if body.get("server") else None
        loc = server["location"]["name"] if server else body["location"]
        volume = self.new("volumes", {
            "name": body["name"], "size": body["size"], "labels": body.get("labels", {}), "created": NOW,
            "server": server["id"] if server else None, "location": catalog.location(loc), "status": "available",
            "format": body.get("format"), "protection": {"delete": False}})
        volume["linux_device"] = f"/dev/disk/by-id/scsi-0HC_Volume_{volume['id']}"
        following = [self.state.action("attach_volume", (volume["id"], "volume"))] if server else []
        return 201, {"volume": public(volume), "action": self.state.action("create_volume", (volume["id"], "volume")),
                     "next_actions": following}

    @route("POST", "/volumes/(\\d+)/actions/attach")
    def attach_volume(self, query, body, rid):
        volume = self.state.get("volumes", int(rid))
        volume["server"] = self.state.get("servers", body["server"])["id"]
        return 201, {"action": self.state.action("attach_volume", (volume["id"], "volume"))}

    @route("POST", "/volumes/(\\d+)/actions/detach")
    def detach_volume(self, query, body, rid):
        volume = self.state.get("volumes", int(rid))
        volume["server"] = None
        return 201, {"action": self.state.action("detach_volume", (volume["id"], "volume"))}

    @route("DELETE", "/volumes/(\\d+)")
    def delete_volume(self, query, body, rid):
        if self.state.get("volumes", int(rid))["server"] is not None:
            raise ApiError(422, "locked", "volume is attached")
        del self.state.resources["volumes"][int(rid)]
        return 204, {}

    # load balancers

    def balancer_server_ids(self, balancer: dict[str, Any]) -> list[int]:
        ids = []
        for target in balancer["targets"]:
            if target["type"] == "server":
                ids.append(target["server"]["id"])
            elif target["type"] == "label_selector":
                ids += [s["id"] for s in self.state.resources["servers"].values()
                        if matches_selector(s["labels"], target["label_selector"]["selector"])]
        return ids

    def balancer_view(self, balancer: dict[str, Any]) -> dict[str, Any]:
        targets = []
        for target in balancer["targets"]:
            view = {key: value for key, value in target.items()}
            if target["type"] == "label_selector":
                view["targets"] = [{"type": "server", "server": {"id": sid},
                                    "use_private_ip": target.get("use_private_ip", False),
                                    "health_status": [{"listen_port": 443, "status": "healthy"}]}
                                   for sid in self.balancer_server_ids(balancer)]
            targets.append(view)
        return {**public(balancer), "targets": targets}

    @route("GET", "/load_balancers")
    def list_load_balancers(self, query, body):
        return self.page("load_balancers",
                         [self.balancer_view(b) for b in self.state.resources["load_balancers"].values()], query)

    @route("GET", "/load_balancers/(\\d+)")
    def get_load_balancer(self, query, body, rid):
        return 200, {"load_balancer": self.balancer_view(self.state.get("load_balancers", int(rid)))}

    @route("POST", "/load_balancers")
    def create_load_balancer(self, query, body):
        n = self.state.next_address()
        network = self.state.get("networks", body["network"]) if body.get("network") else None
        loc = body.get("location") or "fsn1"
        balancer = self.new("load_balancers", {
            "name": body["name"], "labels": body.get("labels", {}), "created": NOW,
            "load_balancer_type": catalog.load_balancer_type(body["load_balancer_type"]),
            "location": catalog.location(loc), "algorithm": body.get("algorithm", {"type": "round_robin"}),
            "services": [{**s, "http": None} if "http" not in s else s for s in body.get("services", [])],
            "targets": body.get("targets", []), "protection": {"delete": False},
            "public_net": {"enabled": True, "ipv4": {"ip": f"203.0.113.{n}", "dns_ptr": None},
                           "ipv6": {"ip": f"2001:db8:{n:x}::1", "dns_ptr": None}},
            "private_net": [{"network": network["id"], "ip": self.private_ip(network)}] if network else [],
            "included_traffic": 21990232555520, "ingoing_traffic": 0, "outgoing_traffic": 0})
        for service in balancer["services"]:
            if service.get("http") is None:
                service.pop("http", None)
            check = service.get("health_check") or {}
            if check.get("http") is not None:
                # as the API answers: every field of an HTTP check, the defaults where the request left one out
                check["http"] = {"domain": None, "response": "", "status_codes": ["2??", "3??"], "tls": False,
                                 **check["http"]}
        return 201, {"load_balancer": self.balancer_view(balancer),
                     "action": self.state.action("create_load_balancer", (balancer["id"], "load_balancer"))}

    @route("DELETE", "/load_balancers/(\\d+)")
    def delete_load_balancer(self, query, body, rid):
        self.state.get("load_balancers", int(rid))
        del self.state.resources["load_balancers"][int(rid)]
        return 204, {}

    # zones and rrsets

    def zone(self, id_or_name: str) -> dict[str, Any]:
        for zone in self.state.resources["zones"].values():
            if str(zone["id"]) == id_or_name or zone["name"] == id_or_name:
                return zone
        raise ApiError(404, "not_found", f"zone {id_or_name} not found")

    def zone_view(self, zone: dict[str, Any]) -> dict[str, Any]:
        records = sum(len(r["records"]) for r in self.state.rrsets[zone["id"]].values())
        return {**public(zone), "record_count": records}

    @route("GET", "/zones")
    def list_zones(self, query, body):
        return self.page("zones", [self.zone_view(z) for z in self.state.resources["zones"].values()], query)

    @route("GET", "/zones/([^/]+)")
    def get_zone(self, query, body, id_or_name):
        return 200, {"zone": self.zone_view(self.zone(id_or_name))}

    @route("POST", "/zones")
    def create_zone(self, query, body):
        servers = ["hydrogen.ns.hetzner.com.", "oxygen.ns.hetzner.com.", "helium.ns.hetzner.de."]
        zone = self.new("zones", {
            "name": body["name"], "mode": body["mode"], "ttl": body.get("ttl", 3600), "labels": body.get("labels", {}),
            "created": NOW, "protection": {"delete": False}, "registrar": "other", "primary_nameservers": [],
            "status": "ok",
            "authoritative_nameservers": {"assigned": servers, "delegated": [], "delegation_last_check": None,
                                          "delegation_status": "unknown"}})
        self.state.rrsets[zone["id"]] = {}
        self.put_rrset(zone, "@", "NS", [{"value": s} for s in servers], {})
        self.put_rrset(zone, "@", "SOA", [{"value": f"{servers[0]} dns.hetzner.com. 1 86400 10800 3600000 3600"}], {})
        return 201, {"zone": self.zone_view(zone), "action": self.state.action("create_zone", (zone["id"], "zone"))}

    @route("DELETE", "/zones/([^/]+)")
    def delete_zone(self, query, body, id_or_name):
        zone = self.zone(id_or_name)
        del self.state.resources["zones"][zone["id"]]
        del self.state.rrsets[zone["id"]]
        return 201, {"action": self.state.action("delete_zone", (zone["id"], "zone"))}

    def put_rrset(self, zone, name, kind, records, labels, ttl=None) -> dict[str, Any]:
        if not records or len({r["value"] for r in records}) != len(records):
            raise ApiError(422, "invalid_input", "records must not be empty and must be distinct")
        if kind == "TXT" and any(not r["value"].startswith('"') for r in records):
            raise ApiError(422, "invalid_input", "TXT record values must be quoted")
        rrset = {"id": f"{name}/{kind}", "name": name, "type": kind, "ttl": ttl, "labels": labels,
                 "protection": {"change": False}, "records": records, "zone": zone["id"]}
        self.state.rrsets[zone["id"]][(name, kind)] = rrset
        return rrset

    @route("GET", "/zones/([^/]+)/rrsets")
    def list_rrsets(self, query, body, id_or_name):
        items = list(self.state.rrsets[self.zone(id_or_name)["id"]].values())
        if "type" in query:
            items = [i for i in items if i["type"] in query["type"]]
        return self.page("rrsets", items, query)

    def rrset(self, id_or_name: str, name: str, kind: str) -> tuple[dict, dict]:
        zone = self.zone(id_or_name)
        rrset = self.state.rrsets[zone["id"]].get((name, kind))
        if rrset is None:
            raise ApiError(404, "not_found", f"rrset {name}/{kind} not found")
        return zone, rrset

    @route("GET", "/zones/([^/]+)/rrsets/([^/]+)/([A-Z]+)")
    def get_rrset(self, query, body, id_or_name, name, kind):
        return 200, {"rrset": self.rrset(id_or_name, name, kind)[1]}

    @route("POST", "/zones/([^/]+)/rrsets")
    def create_rrset(self, query, body, id_or_name):
        zone = self.zone(id_or_name)
        if (body["name"], body["type"]) in self.state.rrsets[zone["id"]]:
            raise ApiError(409, "uniqueness_error", "rrset already exists")
        rrset = self.put_rrset(zone, body["name"], body["type"], body["records"], body.get("labels", {}),
                               body.get("ttl"))
        return 201, {"rrset": rrset, "action": self.state.action("create_rrset", (zone["id"], "zone"))}

    @route("POST", "/zones/([^/]+)/rrsets/([^/]+)/([A-Z]+)/actions/set_records")
    def set_rrset_records(self, query, body, id_or_name, name, kind):
        zone, rrset = self.rrset(id_or_name, name, kind)
        self.put_rrset(zone, name, kind, body["records"], rrset["labels"], rrset["ttl"])
        return 201, {"action": self.state.action("set_records", (zone["id"], "zone"))}

    @route("DELETE", "/zones/([^/]+)/rrsets/([^/]+)/([A-Z]+)")
    def delete_rrset(self, query, body, id_or_name, name, kind):
        zone, _ = self.rrset(id_or_name, name, kind)
        del self.state.rrsets[zone["id"]][(name, kind)]
        return 201, {"action": self.state.action("delete_rrset", (zone["id"], "zone"))}
