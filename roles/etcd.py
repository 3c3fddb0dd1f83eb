"""etcd role: on a clustered database (several db hosts), a three-member etcd that Patroni keeps its leader
lock in. TLS for clients and peers, both verified against the internal CA; only db hosts reach its ports."""

from __future__ import annotations

from typing import Any

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import files, server, systemd

from app import tls_policy
from roles.support.inventory_secrets import (
    INTERNAL_CA_PATH,
    install_internal_tls,
    internal_certificate_path,
    internal_key_path,
)
from roles.support.peers import environment_members
from roles.support.staging import jinja_options

__all__ = ["CLIENT_PORT", "PEER_PORT", "client_endpoints", "config_context", "deploy_etcd", "packages"]

CLIENT_PORT = 2379
PEER_PORT = 2380
CONFIG = "/etc/default/etcd"
DATA_DIR = "/var/lib/etcd/postyard"
CLUSTER_TOKEN = "postyard"
# How long the deploy waits for the members to form a cluster (each waits for a quorum to start).
FORMED_WITHIN = 120


def packages(data: Any) -> tuple[str, ...]:
    """The Debian packages this role needs; the packages role installs them with every other role's."""
    return ("etcd-server", "etcd-client")


def client_endpoints(members: list[tuple[str, str]]) -> list[str]:
    return [f"{address}:{CLIENT_PORT}" for _, address in members]


def config_context(name: str, address: str, members: list[tuple[str, str]]) -> dict[str, Any]:
    return {
        "member": name, "address": address, "data_dir": DATA_DIR, "token": CLUSTER_TOKEN,
        "client_port": CLIENT_PORT, "peer_port": PEER_PORT,
        "initial_cluster": ",".join(f"{member}=https://{peer}:{PEER_PORT}" for member, peer in members),
        "certificate": internal_certificate_path("etcd"), "key": internal_key_path("etcd"),
        "ca": INTERNAL_CA_PATH, "tls_policy": tls_policy.ETCD,
    }


@deploy("etcd")
def deploy_etcd() -> None:
    install_internal_tls("etcd", owner="etcd")
    members = environment_members("db")
    name = host.data.get("hostname") or host.name
    config = files.template(
        name=f"Upload {CONFIG}", src="templates/etcd/etcd.env.j2", dest=CONFIG, mode="644",
        jinja_env_kwargs=jinja_options(), **config_context(name, host.data.private_address, members),
    )
    files.directory(name=f"Create {DATA_DIR}", path=DATA_DIR, user="etcd", group="etcd", mode="700")
    # Each member waits for a quorum before systemd calls it started: start them without waiting, then wait
    # for the cluster.
    server.shell(name="Restart etcd", commands=["systemctl restart --no-block etcd"], _if=config.did_change)
    systemd.service(name="Enable etcd", service="etcd", enabled=True)
    server.shell(
        name="Wait for the etcd cluster",
        commands=[f"timeout {FORMED_WITHIN} sh -c 'until etcdctl {_etcdctl_tls()} endpoint health"
                  f" >/dev/null 2>&1; do sleep 1; done'"],
        _if=config.did_change,
    )


def _etcdctl_tls() -> str:
    return (f"--endpoints=https://127.0.0.1:{CLIENT_PORT} --cacert={INTERNAL_CA_PATH} "
            f"--cert={internal_certificate_path('etcd')} --key={internal_key_path('etcd')}")
