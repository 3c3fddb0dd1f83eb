"""Load balancer role (the testbed's): HAProxy standing in for Hetzner's load balancer, as postyard configures that
one. It passes TCP on 443 to the api hosts' proxies on the private network with the PROXY protocol, so they know the
client, and passes ACME's HTTP-01 requests for the API's name on 80 to whichever api host is validating."""

from __future__ import annotations

from typing import Any

from pyinfra.api import deploy
from pyinfra.operations import systemd

from app.host_layout import API_PROXY_HEALTH_PATH, API_PROXY_HEALTH_PORT, API_PROXY_PORT
from roles.support.peers import environment_members
from roles.support.staging import install_validated_template
from roles.support.systemd_units import enabled_and_running

__all__ = ["CONFIG", "balancer_context", "deploy_load_balancer", "packages"]

CONFIG = "/etc/haproxy/haproxy.cfg"


def packages(data: Any) -> tuple[str, ...]:
    """The Debian packages this role needs; the packages role installs them with every other role's."""
    return ("haproxy",)


def balancer_context(api_hosts: list[tuple[str, str]]) -> dict[str, Any]:
    return {"api_hosts": api_hosts, "proxy_port": API_PROXY_PORT, "health_port": API_PROXY_HEALTH_PORT,
            "health_path": API_PROXY_HEALTH_PATH}


@deploy("Load balancer")
def deploy_load_balancer() -> None:
    api_hosts = environment_members("api")
    config = install_validated_template(
        "templates/load_balancer/haproxy.cfg.j2", CONFIG, validate="haproxy -c -q -f {path}",
        **balancer_context(api_hosts))
    enabled_and_running(name="Enable HAProxy", service="haproxy")
    systemd.service(name="Reload HAProxy", service="haproxy", reloaded=True, _if=config.did_change)
