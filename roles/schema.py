"""Schema role: the app's alembic migrations, applied once per environment by one host.

The migrations run as the database owner, from the first host (by name) of the schema group
(postyard/topology.py), the one host besides the db host given the owner's credential, in a file only
root reads; alembic takes the database's version lock, so a concurrent run from elsewhere waits. A digest of the
migrations on the host records what was applied, so an unchanged schema is not touched.
"""

from __future__ import annotations

import hashlib
from io import StringIO
from pathlib import Path

from pyinfra.api import deploy
from pyinfra.operations import files

from app.db.roles import OWNER
from app.host_layout import STATE_DIR
from postyard.topology import SCHEMA_GROUP
from roles import app_runtime
from roles.support.database_client import database_login
from roles.support.inventory_secrets import INTERNAL_CA_PATH, install_internal_ca
from roles.support.peers import first_in_environment
from roles.support.stamps import run_once_for

__all__ = ["migrations_digest", "deploy_schema"]

MIGRATIONS = app_runtime.REPO / "app" / "db" / "migrations" / "versions"
STAMP = f"{STATE_DIR}/schema.applied"


def migrations_digest(directory: Path = MIGRATIONS) -> str:
    digest = hashlib.sha256()
    for path in sorted(directory.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


@deploy("Schema")
def deploy_schema() -> None:
    if not first_in_environment((SCHEMA_GROUP,)):
        return
    install_internal_ca()
    owner = database_login(OWNER)
    files.put(
        name=f"Upload {app_runtime.OWNER_ENV}", dest=app_runtime.OWNER_ENV, mode="600",
        src=StringIO(f"POSTYARD_MIGRATION_DATABASE_URL={owner.sqlalchemy_url()}\nPGSSLROOTCERT={INTERNAL_CA_PATH}\n"),
    )
    files.directory(name=f"Create {STATE_DIR}", path=STATE_DIR, mode="755")
    run_once_for(
        "Apply the database migrations", f"set -a && . {app_runtime.OWNER_ENV} && {app_runtime.LAUNCHER} migrate",
        stamp=STAMP, digest=migrations_digest(),
    )
