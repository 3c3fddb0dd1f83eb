"""The exposure table: every port the platform may open, once, as data.

The firewall role, the Hetzner Cloud Firewall and the verification suite all read this table;
no other copy of the port list exists.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from app.host_layout import ACME_STANDALONE_PORT, API_PROXY_HEALTH_PORT, API_PROXY_PORT, PGBACKREST_PORT
from postyard.topology import INVENTORY_GROUPS, LB_GROUP

__all__ = ["Exposure", "EXPOSURE", "exposures_for_host", "public_ports_open_on", "ALL_GROUPS"]

ALL_GROUPS: tuple[str, ...] = INVENTORY_GROUPS


@dataclass(frozen=True)
class Exposure:
    """One listening port and who may reach it."""

    port: int
    protocol: Literal["tcp", "udp"]
    service: str
    role: str  # the role that runs the listener; the port opens only where that role is deployed
    groups: tuple[str, ...]  # inventory groups whose hosts listen on it
    public: bool  # True: from anywhere on the public interface; False: private network only
    clients: tuple[str, ...] = ()  # private rows: groups whose hosts may connect
    enabled_by: str | None = None  # optional rows: the host data flag that turns them on
    on_demand: bool = False  # its listener runs only at times: between them the port is closed, not open
    summary: str = ""
    replaced_by: str | None = None  # a host running this role has other rows for the port instead


EXPOSURE: tuple[Exposure, ...] = (
    Exposure(22, "tcp", "ssh", "base", ALL_GROUPS, True,
             summary="sshd, keys only (optionally an admin allowlist)"),
    Exposure(25, "tcp", "smtp", "postfix", ("mail",), True,
             summary="Postfix inbound MX: bounces and inbound mail, STARTTLS offered, no AUTH, no relay"),
    Exposure(80, "tcp", "http-acme", "tls", ("mail", "api"), True, enabled_by="acme_http01", on_demand=True,
             summary="ACME HTTP-01 challenges only (certbot listens only while it validates)", replaced_by="api_proxy"),
    Exposure(443, "tcp", "https", "api", ("api",), True,
             summary="HTTP API (granian, TLS >= 1.2, HSTS)"),
    Exposure(80, "tcp", "http-acme", "load_balancer", (LB_GROUP,), True, enabled_by="acme_http01",
             summary="load balancer: ACME HTTP-01 for the API's name, passed on to the api hosts"),
    Exposure(443, "tcp", "https", "load_balancer", (LB_GROUP,), True,
             summary="load balancer: the API's name, TCP passed on to the api hosts with the PROXY protocol"),
    Exposure(80, "tcp", "http-acme-relay", "api_proxy", ("api",), True, enabled_by="acme_http01",
             summary="behind a load balancer: ACME HTTP-01 relayed to the api host whose certbot validates; "
                     "anything else redirected to HTTPS"),
    Exposure(80, "tcp", "http-acme-relay", "api_proxy", ("api",), False, clients=(LB_GROUP,),
             enabled_by="acme_http01", summary="as above, from the load balancer (the API's name)"),
    Exposure(ACME_STANDALONE_PORT, "tcp", "http-acme", "api_proxy", ("api",), False, clients=("api",),
             enabled_by="acme_http01", on_demand=True,
             summary="behind a load balancer: certbot, only while it validates, for the api hosts' relays"),
    Exposure(API_PROXY_PORT, "tcp", "https-balanced", "api_proxy", ("api",), False, clients=(LB_GROUP,),
             summary="HAProxy: the load balancer's connections (PROXY protocol), TLS; the API learns the client"),
    Exposure(API_PROXY_HEALTH_PORT, "tcp", "api-health", "api_proxy", ("api",), False, clients=(LB_GROUP,),
             summary="the API proxy's answer to the load balancer's health check: 200 while the host's API is alive"),
    Exposure(465, "tcp", "submissions", "postfix", ("mail",), True,
             summary="submission, implicit TLS, AUTH required"),
    Exposure(587, "tcp", "submission", "postfix", ("mail",), True,
             summary="submission, STARTTLS required before AUTH"),
    Exposure(993, "tcp", "imaps", "dovecot", ("mail",), True, enabled_by="mailboxes_enabled",
             summary="IMAPS, only when mailboxes are enabled"),
    Exposure(5432, "tcp", "postgresql", "postgresql", ("db",), False, clients=("api", "mail", "cache"),
             summary="PostgreSQL, TLS + scram-sha-256; cache hosts only for their status report"),
    Exposure(5432, "tcp", "postgresql", "patroni", ("db",), False, clients=("api", "mail", "cache", "db"),
             summary="PostgreSQL under Patroni (a clustered database): as above, and from the other db hosts "
                     "(replication, pg_rewind, their status report)"),
    Exposure(8008, "tcp", "patroni", "patroni", ("db",), False, clients=("api", "mail", "cache", "db"),
             summary="Patroni's REST API, TLS: each host's HAProxy asks which member is the primary"),
    Exposure(2379, "tcp", "etcd", "etcd", ("db",), False, clients=("db",),
             summary="etcd for Patroni's leader lock, TLS with client certificates"),
    Exposure(2380, "tcp", "etcd-peer", "etcd", ("db",), False, clients=("db",),
             summary="etcd's members among themselves, TLS with client certificates"),
    Exposure(PGBACKREST_PORT, "tcp", "pgbackrest", "pgbackrest_member", ("db",), False, clients=("cache",),
             summary="clustered database: pgBackRest's TLS server on each member, for the repository host's "
                     "backups; client certificates of the internal CA, the repository host's only"),
    Exposure(PGBACKREST_PORT, "tcp", "pgbackrest-repository", "pgbackrest_repository", ("cache",), False,
             clients=("db",),
             summary="clustered database: the pgBackRest repository's TLS server, for the members' WAL and "
                     "restores; client certificates of the internal CA, the members' only"),
    Exposure(6379, "tcp", "redis", "redis", ("cache",), False, clients=("api",),
             summary="Redis, ACL auth, TLS where it crosses hosts"),
)


def _is_on(row: Exposure, groups: Iterable[str], roles: Iterable[str], flags: Mapping[str, object]) -> bool:
    return (
        bool(set(row.groups) & set(groups))
        and row.role in roles
        and row.replaced_by not in roles
        and (row.enabled_by is None or bool(flags.get(row.enabled_by)))
    )


def exposures_for_host(
    groups: Iterable[str], roles: Iterable[str], flags: Mapping[str, object]
) -> tuple[Exposure, ...]:
    """The rows a host listens on: in its groups, its role deployed, its flag (if any) set."""
    groups, roles = tuple(groups), tuple(roles)
    return tuple(row for row in EXPOSURE if _is_on(row, groups, roles, flags))


def public_ports_open_on(
    groups: Iterable[str], roles: Iterable[str], flags: Mapping[str, object]
) -> tuple[tuple[int, str], ...]:
    """(port, protocol) pairs that must answer from the internet on such a host."""
    return tuple((r.port, r.protocol) for r in exposures_for_host(groups, roles, flags) if r.public)
