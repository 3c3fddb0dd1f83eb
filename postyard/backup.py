"""List and restore the encrypted PostgreSQL backups of a db host.

The age identity never stays on the host: it is streamed in for the restore, held in a
private tmpfs file only while age reads it, and removed.
"""

from __future__ import annotations

from postyard.inventory_hosts import InfraHost
from postyard.secrets import SecretStore
from postyard.ssh import SshError, ssh_run
from roles.postgresql_backup import DEFAULTS, IDENTITY_SECRET, SSH_KEY_SECRET, public_key_line

__all__ = ["backup_public_key", "list_backups", "restore_backup"]

BACKUP_DIR = DEFAULTS["backup_dir"]

RESTORE_SCRIPT = r"""
set -euo pipefail
cd /
backup="$1"; database="$2"
key=$(mktemp -p /run)
trap 'rm -f "$key"' EXIT
cat > "$key"
chown postgres "$key"
runuser -u postgres -- createdb "$database"
runuser -u postgres -- bash -c \
    'set -o pipefail; age --decrypt --identity "$1" "$2" | pg_restore --no-owner --exit-on-error --dbname "$3"' \
    _ "$key" "$backup" "$database"
"""


def list_backups(host: InfraHost, backup_dir: str = BACKUP_DIR) -> list[str]:
    """Backup files on the host, oldest first."""
    listing = ssh_run(host, ["find", backup_dir, "-maxdepth", "1", "-name", "*.dump.age", "-printf", "%f\\n"])
    return sorted(f"{backup_dir}/{name}" for name in listing.split())


def restore_backup(host: InfraHost, backup: str, database: str) -> None:
    """Restore one backup into a new database on the host (it must not exist yet)."""
    if not database.replace("_", "").isalnum():
        raise ValueError(f"database name {database!r}: use letters, digits and underscores")
    identity = host.secrets().get_bytes(IDENTITY_SECRET, _missing_identity)
    try:
        ssh_run(host, ["bash", "-c", RESTORE_SCRIPT, "restore", backup, database], input=identity)
    except SshError as error:
        raise SshError(error.host, f"restore of {backup} into {database}", error.status, error.stderr) from None


def _missing_identity() -> bytes:
    raise ValueError("this inventory has no backup identity: backups were never set up from here")


def backup_public_key(store: SecretStore) -> str:
    """The public half of the db hosts' backup SSH key (created by the first deploy with a remote)."""
    if not store.path(SSH_KEY_SECRET).exists():
        raise ValueError("no backup SSH key yet: set backup_remote and deploy once")
    return public_key_line(store.path(SSH_KEY_SECRET).read_bytes())
