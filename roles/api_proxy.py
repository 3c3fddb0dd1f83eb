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
from app.host_layout import ACME_STANDALONE_PORT, API_PORT, API_PROXY_PORT, API_PROXY_SERVICE, API_SERVICE
from roles.support.peers import environment_members, host_roles
from roles.support.staging import install_validated_template
from roles.support.systemd_units import install_unit
from roles.tls import FULLCHAIN_PATH, PRIVKEY_PATH

__all__ = ["CONFIG", "PEM_PATH", "RUNTIME_DIRECTORY", "deploy_api_proxy", "join_pem_command", "join_pem_script",
           "packages", "proxy_context", "validate_command"]

CONFIG = "/etc/haproxy/postyard-api-proxy.cfg"
RUNTIME_DIRECTORY = API_PROXY_SERVICE
PEM_PATH = f"/run/{RUNTIME_DIRECTORY}/certificate.pem"


def packages(data: Any) -> tuple[str, ...]:
    """The Debian packages this role needs; the packages role installs them with every other role's."""
    return ("haproxy", "openssl")


def join_pem_script(target: str) -> str:
    """The certificate chain and its key in the one file HAProxy reads; before certbot's first certificate, a
    self-signed one of a day, so the proxy can relay ACME's requests for it (no client is sent to a host whose
    API does not answer yet)."""
    placeholder = (f"openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 "
                   f"-subj /CN=placeholder -keyout {target}.key -out {target}.crt 2>/dev/null "
                   f"&& cat {target}.crt {target}.key > {target} && rm -f {target}.crt {target}.key")
    return (f"umask 077 && if [ -r {FULLCHAIN_PATH} ] && [ -r {PRIVKEY_PATH} ]; "
            f"then cat {FULLCHAIN_PATH} {PRIVKEY_PATH} > {target}; else {placeholder}; fi")


def join_pem_command() -> str:
    """The unit's step before each start and reload: the joined file, readable by HAProxy's user alone."""
    return f"/bin/sh -c {shlex.quote(join_pem_script(PEM_PATH) + f' && chown haproxy:haproxy {PEM_PATH}')}"


def validate_command() -> str:
    """HAProxy's check of a staged config ({path}), with a joined copy of the certificate in place of the one the
    unit writes at start."""
    staged = "{path}"
    return (f"({join_pem_script(staged + '.pem')} "
            f"&& sed 's#{PEM_PATH}#{staged}.pem#' {staged} > {staged}.check && haproxy -c -q -f {staged}.check; "
            f"status=$?; rm -f {staged}.pem {staged}.check; exit $status)")


def proxy_context(private_address: str, hostname: str, api_hosts: list[tuple[str, str]]) -> dict[str, Any]:
    return {"private_address": private_address, "port": API_PROXY_PORT, "pem": PEM_PATH, "api_port": API_PORT,
            "hostname": hostname, "api_hosts": api_hosts, "acme_port": ACME_STANDALONE_PORT,
            "tls_policy": tls_policy.HAPROXY}


@deploy("API proxy")
def deploy_api_proxy() -> None:
    # Validated with a copy of the certificate and key the unit joins as it starts, removed afterwards.
    config = install_validated_template(
        "templates/api_proxy/haproxy.cfg.j2", CONFIG, validate=validate_command(),
        **proxy_context(str(host.data.private_address), str(host.data.get("hostname") or host.name),
                        environment_members("api")))
    install_unit(f"{API_PROXY_SERVICE}.service", "templates/api_proxy/postyard-api-proxy.service.j2",
                 restart_on=(config,), label="the API proxy", config=CONFIG, api_service=API_SERVICE,
                 runtime_directory=RUNTIME_DIRECTORY, join_pem=join_pem_command())
    if "postgresql_router" not in host_roles():
        # Debian's own HAProxy unit, which the package enables, has nothing to do here.
        systemd.service(name="Disable Debian's HAProxy unit", service="haproxy", running=False, enabled=False)
