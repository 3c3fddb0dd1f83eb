"""What the fake offers: locations, server types, images, load balancer types (shapes from the spec)."""

from __future__ import annotations

from typing import Any

__all__ = ["LOCATIONS", "SERVER_TYPES", "IMAGES", "LOAD_BALANCER_TYPES", "location", "datacenter",
           "server_type", "image", "load_balancer_type"]

LOCATIONS: dict[str, dict[str, Any]] = {
    name: {"id": index, "name": name, "description": description, "country": country, "city": city,
           "latitude": latitude, "longitude": longitude, "network_zone": zone}
    for index, (name, description, country, city, latitude, longitude, zone) in enumerate((
        ("fsn1", "Falkenstein DC Park 1", "DE", "Falkenstein", 50.47612, 12.370071, "eu-central"),
        ("nbg1", "Nuremberg DC Park 1", "DE", "Nuremberg", 49.452102, 11.076665, "eu-central"),
        ("hel1", "Helsinki DC Park 1", "FI", "Helsinki", 60.169855, 24.938379, "eu-central"),
        ("ash", "Ashburn, VA", "US", "Ashburn, VA", 39.045, -77.487, "us-east"),
    ), start=1)
}
# name -> (id, cores, memory GB, disk GB, locations, cpu type)
_TYPES = {
    "cx23": (104, 2, 4.0, 40, ("fsn1", "nbg1", "hel1"), "shared"),
    "cx33": (105, 4, 8.0, 80, ("fsn1", "nbg1", "hel1"), "shared"),
    "cpx22": (110, 2, 4.0, 80, ("fsn1", "nbg1", "hel1", "ash"), "shared"),
    "ccx13": (96, 2, 8.0, 80, ("ash",), "dedicated"),
}
SERVER_TYPES = {name: values[0] for name, values in _TYPES.items()}
IMAGES = {"debian-12": 114690387}
LOAD_BALANCER_TYPES = {"lb11": 1}


def _price(location_name: str) -> dict[str, Any]:
    amount = {"gross": "1.0000000000000000", "net": "1.0000000000"}
    return {"location": location_name, "price_hourly": amount, "price_monthly": amount,
            "included_traffic": 21990232555520, "price_per_tb_traffic": amount}


def location(name: str) -> dict[str, Any]:
    return dict(LOCATIONS[name])


def datacenter(location_name: str) -> dict[str, Any]:
    ids = list(SERVER_TYPES.values())
    return {"id": LOCATIONS[location_name]["id"], "name": f"{location_name}-dc1",
            "description": f"{location_name} virtual DC 1", "location": location(location_name),
            "server_types": {"available": ids, "available_for_migration": ids, "supported": ids}}


def server_type(name: str) -> dict[str, Any]:
    type_id, cores, memory, disk, locations, cpu = _TYPES[name]
    return {
        "id": type_id, "name": name, "description": name.upper(), "cores": cores, "memory": memory,
        "disk": disk, "deprecated": False, "deprecation": None, "storage_type": "local", "cpu_type": cpu,
        "architecture": "x86", "category": "cost_optimized",
        "prices": [_price(loc) for loc in locations],
        # hcloud 2.27 reads `available` and `recommended`, newer than the stored description (extra keys are allowed)
        "locations": [{"id": LOCATIONS[loc]["id"], "name": loc, "deprecation": None, "available": True,
                       "recommended": True} for loc in locations],
    }


def image(name: str) -> dict[str, Any]:
    return {
        "id": IMAGES[name], "type": "system", "status": "available", "name": name,
        "description": "Debian 12", "image_size": None, "disk_size": 5, "created": "2023-06-13T06:00:02Z",
        "created_from": None, "bound_to": None, "os_flavor": "debian", "os_version": "12",
        "rapid_deploy": True, "protection": {"delete": False}, "deprecated": None, "deleted": None,
        "labels": {}, "architecture": "x86",
    }


def load_balancer_type(name: str) -> dict[str, Any]:
    return {"id": LOAD_BALANCER_TYPES[name], "name": name, "description": "LB11", "max_connections": 10000,
            "max_services": 5, "max_targets": 25, "max_assigned_certificates": 10, "deprecated": None,
            "prices": [_price(loc) for loc in ("fsn1", "nbg1", "hel1")]}
