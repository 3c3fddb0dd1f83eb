"""API proxy role: on an api host behind a load balancer, HAProxy takes the balancer's connections on the private
network. They arrive with the PROXY protocol, which names the client; TLS ends here with the host's certificate,
which names the API's name too; and the request goes on to the API on loopback with X-Forwarded-For set to the
client's address, which the API believes from 127.0.0.1 alone (app/asgi.py).

granian speaks no PROXY protocol, hence this hop. Its own unit, apart from the database router's HAProxy on a
clustered database, so neither's reload touches the other's connections.
"""

from __future__ import annotations

import shlex
from typing import Any

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import systemd

from app import tls_policy
from app.host_layout import (
    ACME_STANDALONE_PORT,
    API_LIVENESS_PATH,
    API_PORT,
    API_PROXY_HEALTH_PATH,
    API_PROXY_HEALTH_PORT,
    API_PROXY_PORT,
    API_PROXY_SERVICE,
    API_SERVICE,
)
from roles.support.peers import environment_members, host_roles
from roles.support.staging import install_validated_template
from roles.support.system_users import declare_users
from roles.support.systemd_units import install_unit
from roles.tls import FULLCHAIN_PATH, PRIVKEY_PATH

__all__ = ["CONFIG", "PEM_PATH", "PROXY_USER", "RUNTIME_DIRECTORY", "deploy_api_proxy", "join_pem_command", "packages",
           "placeholder_pem", "proxy_context", "unit_context", "validate_command"]

CONFIG = "/etc/haproxy/postyard-api-proxy.cfg"
RUNTIME_DIRECTORY = API_PROXY_SERVICE
PROXY_USER = API_PROXY_SERVICE
PEM_PATH = f"/run/{RUNTIME_DIRECTORY}/certificate.pem"


def packages(data: Any) -> tuple[str, ...]:
    """The Debian packages this role needs; the packages role installs them with every other role's."""
    return ("haproxy", "openssl")


def placeholder_pem(target: str) -> str:
    """A self-signed certificate of a day and its key, joined into target."""
    return (f"openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 "
            f"-subj /CN=placeholder -keyout {target}.key -out {target}.crt 2>/dev/null "
            f"&& cat {target}.crt {target}.key > {target} && rm -f {target}.crt {target}.key")


def join_pem_command() -> str:
    """The unit's step before each start and reload: the certificate chain and its key in the one file HAProxy
    reads, readable by the proxy's user alone. Before certbot's first certificate, a placeholder, so the proxy can
    relay ACME's requests for it (the balancer sends no client to a host whose API does not answer yet)."""
    script = (f"umask 077 && if [ -r {FULLCHAIN_PATH} ] && [ -r {PRIVKEY_PATH} ]; "
              f"then cat {FULLCHAIN_PATH} {PRIVKEY_PATH} > {PEM_PATH}; else {placeholder_pem(PEM_PATH)}; fi "
              f"&& chown {PROXY_USER}:{PROXY_USER} {PEM_PATH}")
    return f"/bin/sh -c {shlex.quote(script)}"


def validate_command() -> str:
    """HAProxy's check of a staged config ({path}), with a placeholder in place of the certificate the unit joins
    as it starts (the real key is never copied for it)."""
    staged = "{path}"
    return (f"(umask 077 && {placeholder_pem(staged + '.pem')} "
            f"&& sed 's#{PEM_PATH}#{staged}.pem#' {staged} > {staged}.check && haproxy -c -q -f {staged}.check; "
            f"status=$?; rm -f {staged}.pem {staged}.check; exit $status)")


def proxy_context(private_address: str, hostname: str, api_hosts: list[tuple[str, str]]) -> dict[str, Any]:
    return {"private_address": private_address, "port": API_PROXY_PORT, "pem": PEM_PATH, "api_port": API_PORT,
            "hostname": hostname, "api_hosts": api_hosts, "acme_port": ACME_STANDALONE_PORT,
            "health_port": API_PROXY_HEALTH_PORT, "health_path": API_PROXY_HEALTH_PATH,
            "liveness_path": API_LIVENESS_PATH, "service": API_PROXY_SERVICE, "tls_policy": tls_policy.HAPROXY}


def unit_context() -> dict[str, Any]:
    return {"config": CONFIG, "api_service": API_SERVICE, "runtime_directory": RUNTIME_DIRECTORY,
            "join_pem": join_pem_command(), "proxy_user": PROXY_USER}


@deploy("API proxy")
def deploy_api_proxy() -> None:
    config = install_validated_template(
        "templates/api_proxy/haproxy.cfg.j2", CONFIG, validate=validate_command(),
        **proxy_context(str(host.data.private_address), str(host.data.get("hostname") or host.name),
                        environment_members("api")))
    # Its own user: on a clustered database, Debian's HAProxy (the database router) runs as haproxy.
    declare_users(API_PROXY_SERVICE, [f"u {PROXY_USER} - - - /usr/sbin/nologin"])
    unit = install_unit(f"{API_PROXY_SERVICE}.service", "templates/api_proxy/postyard-api-proxy.service.j2",
                        label="the API proxy", **unit_context())
    # A new config is reloaded: HAProxy's new workers take over and the old ones finish their connections.
    systemd.service(name="Reload the API proxy", service=API_PROXY_SERVICE, reloaded=True,
                    _if=lambda: config.did_change() and not unit.did_change())
    if "postgresql_router" not in host_roles():
        # Debian's own HAProxy unit, which the package enables, has nothing to do here.
        systemd.service(name="Disable Debian's HAProxy unit", service="haproxy", running=False, enabled=False)
