"""How a host's services reach the platform's PostgreSQL: which address, with which role's password."""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from urllib.parse import quote

from pyinfra import host
from pyinfra.api.exceptions import DeployError

from postyard.topology import host_groups
from roles.support.inventory_secrets import INTERNAL_CA_PATH, secret, secret_store
from roles.support.peers import database_is_clustered, peers_by_group

__all__ = ["DatabaseLogin", "database_login", "data_keys"]

DATA_KEYS_SECRET = "app-data-keys"
POSTGRESQL_PORT = 5432
# roles/postgresql_router.py listens here; defined here, where clients are pointed at it, so that role (which
# imports Patroni's) is not imported by every client of this module.
ROUTER_PORT = 6432


@dataclass(frozen=True)
class DatabaseLogin:
    """One role's connection to the database, always TLS with the internal CA verified."""

    address: str
    database: str
    user: str
    password: str
    port: int = POSTGRESQL_PORT

    def libpq_url(self, passfile: str | None = None) -> str:
        """For libpq and asyncpg (root certificate from PGSSLROOTCERT); with a passfile (see pgpass_line), the
        URL carries no password, so a client that logs it (Postfix does, on each failed lookup) leaks none."""
        login = self.user if passfile else f"{self.user}:{quote(self.password, safe='')}"
        return (f"postgresql://{login}@{self.address}:{self.port}/{self.database}?sslmode=verify-full"
                + (f"&passfile={quote(passfile, safe='/')}" if passfile else ""))

    def pgpass_line(self) -> str:
        """This login as a line of a libpq password file."""
        fields = (self.address, str(self.port), self.database, self.user, self.password)
        return ":".join(f.replace("\\", "\\\\").replace(":", "\\:") for f in fields) + "\n"

    def sqlalchemy_url(self) -> str:
        return (f"postgresql+asyncpg://{self.user}:{quote(self.password, safe='')}@{self.address}:{self.port}/"
                f"{self.database}?ssl=verify-full")

    def conninfo(self) -> str:
        """libpq key=value form (Dovecot)."""
        return (f"host={self.address} port={self.port} dbname={self.database} user={self.user} "
                f"password={self.password} sslmode=verify-full sslrootcert={INTERNAL_CA_PATH}")


def database_endpoint() -> tuple[str, int]:
    """Where this host reaches the primary: its own HAProxy where the database is clustered (roles/
    postgresql_router.py), loopback on the database host, else the db host's private address."""
    if database_is_clustered():
        return "127.0.0.1", ROUTER_PORT
    if "db" in host_groups(host.groups):
        return "127.0.0.1", POSTGRESQL_PORT
    found = peers_by_group().get("db", [])
    if not found:
        raise DeployError(f"{host.name} needs the database, but its environment has no db host")
    return found[0], POSTGRESQL_PORT


def database_login(role: str) -> DatabaseLogin:
    address, port = database_endpoint()
    return DatabaseLogin(
        address=address, port=port, database=host.data.get("postgresql_database", "postyard"),
        user=role, password=secret(f"postgresql-{role}"),
    )


def data_keys() -> str:
    """The app's AES-256-GCM data keys as `id:base64` (POSTYARD_DATA_KEYS); made on first use."""
    return secret_store().get(DATA_KEYS_SECRET, lambda: "k1:" + base64.b64encode(os.urandom(32)).decode())
