"""PostgreSQL router role: on a clustered database, HAProxy on every host sends the host's database connections
to whichever member Patroni's REST API calls the primary, and cuts those to a member that stops being it.

Clients connect to 127.0.0.1 (roles/support/database_client.py); TLS passes through, so each still checks the
primary's certificate (which names 127.0.0.1) against the internal CA, and pg_hba.conf still sees this host's
own address.
"""

from __future__ import annotations

from typing import Any

from pyinfra.api import deploy
from pyinfra.operations import systemd
from pyinfra.operations.util import any_changed

from app import tls_policy
from roles.patroni import REST_PORT
from roles.support.database_client import ROUTER_PORT
from roles.support.inventory_secrets import INTERNAL_CA_PATH, install_internal_ca
from roles.support.peers import environment_members
from roles.support.staging import install_validated_template
from roles.support.systemd_units import enabled_and_running

__all__ = ["deploy_postgresql_router", "packages", "router_context"]

CONFIG = "/etc/haproxy/haproxy.cfg"


def packages(data: Any) -> tuple[str, ...]:
    """The Debian packages this role needs; the packages role installs them with every other role's."""
    return ("haproxy",)


def router_context(members: list[tuple[str, str]]) -> dict[str, Any]:
    return {"port": ROUTER_PORT, "members": members, "rest_port": REST_PORT, "ca": INTERNAL_CA_PATH,
            "tls_policy": tls_policy.HAPROXY}


@deploy("PostgreSQL router")
def deploy_postgresql_router() -> None:
    ca = install_internal_ca()
    config = install_validated_template("templates/postgresql_router/haproxy.cfg.j2", CONFIG,
                                        validate="haproxy -c -q -f {path}", **router_context(environment_members("db")))
    enabled_and_running(name="Enable HAProxy", service="haproxy")
    systemd.service(name="Reload HAProxy", service="haproxy", reloaded=True, _if=any_changed(config, ca))
