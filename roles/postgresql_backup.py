"""Nightly PostgreSQL backups, encrypted with age on the database host before they are written.

The age identity (private key) stays in the inventory's secret store on the control machine; the
host holds only the recipient (public key), so it can write backups but never read them.
"""

from __future__ import annotations

import subprocess
from io import BytesIO, StringIO
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pyinfra import host
from pyinfra.api import deploy
from pyinfra.api.exceptions import DeployError
from pyinfra.operations import files

from roles.postgresql import DEFAULTS as POSTGRESQL_DEFAULTS
from roles.support.inventory_secrets import secret_store
from roles.support.staging import jinja_options
from roles.support.systemd_units import start_unit

__all__ = [
    "DEFAULTS", "BACKUP_SCRIPT", "age_identity", "age_recipient", "backup_context", "backup_ssh_key",
    "public_key_line", "packages", "remote_shell",
    "deploy_postgresql_backup",
]

DEFAULTS: dict[str, Any] = {
    # Where encrypted dumps are written on the database host, and for how many days each is kept there
    # and on backup_remote (older copies are deleted by the nightly run, by the date in their name).
    "backup_dir": "/var/backups/postyard",
    "backup_keep_days": 14,
    # systemd OnCalendar expression for the nightly run.
    "backup_schedule": "*-*-* 02:30:00",
    # Off-host copies of the encrypted files, over rsync and SSH: "user@host:directory" (a Hetzner
    # Storage Box: "u12345@u12345.your-storagebox.de:postyard", port 23), and the remote's host
    # key as a known_hosts line (checked strictly). Authorise the key `postyard backup-key`
    # prints on the remote. Unset: backups stay on the host.
    "backup_remote": None,
    "backup_remote_port": 23,
    "backup_remote_host_key": None,
    # The database to dump (the postgresql role's setting).
    "postgresql_database": POSTGRESQL_DEFAULTS["postgresql_database"],
}

BACKUP_SCRIPT = "/usr/local/sbin/postyard-backup"
IDENTITY_SECRET = "backup-age-identity"
SSH_KEY_SECRET = "backup-ssh-key"
SSH_DIR = "/etc/postyard/backup"


def packages(data: Any) -> tuple[str, ...]:
    """The Debian packages this role needs; the packages role installs them with every other role's."""
    remote = data.get("backup_remote", DEFAULTS["backup_remote"])
    return ("age",) + (("rsync", "openssh-client") if remote else ())


def _generate_ssh_key() -> bytes:
    return Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
    )


def public_key_line(private: bytes) -> str:
    key = serialization.load_ssh_private_key(private, None)
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return f"{public.decode()} postyard-backup"


def backup_ssh_key() -> tuple[bytes, str]:
    """(private key, public key line) the db hosts use to copy backups off the host."""
    private = secret_store().get_bytes(SSH_KEY_SECRET, _generate_ssh_key)
    return private, public_key_line(private)


def _generate_identity() -> bytes:
    return subprocess.run(["age-keygen"], capture_output=True, check=True).stdout


def age_identity() -> str:
    """The age identity file (private key), generated on first use on the control machine."""
    return secret_store().get_bytes(IDENTITY_SECRET, _generate_identity).decode()


def age_recipient(identity: str) -> str:
    """The public key line that age-keygen writes into the identity file."""
    for line in identity.splitlines():
        if line.startswith("# public key: "):
            return line.removeprefix("# public key: ").strip()
    raise ValueError("the age identity has no public key line")


def remote_shell(data: Any) -> str:
    """The ssh command line rsync reaches backup_remote with: this role's key, the remote's host key checked."""
    return (f"ssh -p {data.backup_remote_port} -i {SSH_DIR}/ssh_key -o UserKnownHostsFile={SSH_DIR}/known_hosts"
            " -o StrictHostKeyChecking=yes -o BatchMode=yes")


def backup_context(data: Any, recipient: str) -> dict[str, Any]:
    return {
        "recipient": recipient,
        "remote": data.backup_remote or "",
        "rsh": remote_shell(data),
        "backup_dir": data.backup_dir,
        "keep_days": data.backup_keep_days,
        "schedule": data.backup_schedule,
        "database": data.postgresql_database,
    }


@deploy("PostgreSQL backups", data_defaults=DEFAULTS)
def deploy_postgresql_backup() -> None:
    files.directory(
        name=f"Create {host.data.backup_dir}", path=host.data.backup_dir,
        user="postgres", group="postgres", mode="700",
    )
    context = backup_context(host.data, age_recipient(age_identity()))
    if host.data.backup_remote:
        _remote_copy_credentials()
    files.template(
        name=f"Upload {BACKUP_SCRIPT}", src="templates/backup/postyard-backup.sh.j2", dest=BACKUP_SCRIPT,
        mode="755", jinja_env_kwargs=jinja_options(), **context,
    )
    units = [
        files.template(
            name=f"Upload /etc/systemd/system/postyard-backup.{kind}",
            src=f"templates/backup/postyard-backup.{kind}.j2",
            dest=f"/etc/systemd/system/postyard-backup.{kind}",
            mode="644", jinja_env_kwargs=jinja_options(), **context,
        )
        for kind in ("service", "timer")
    ]
    start_unit("postyard-backup.timer", units, label="the nightly backup", restart=False)


def _remote_copy_credentials() -> None:
    if not host.data.backup_remote_host_key:
        raise DeployError("backup_remote is set: set backup_remote_host_key to the remote's known_hosts line")
    private, public = backup_ssh_key()
    files.directory(name=f"Create {SSH_DIR}", path=SSH_DIR, user="postgres", group="postgres", mode="700")
    files.put(
        name="Upload the backup SSH key", src=BytesIO(private), dest=f"{SSH_DIR}/ssh_key",
        user="postgres", group="postgres", mode="600",
    )
    files.put(
        name="Upload the backup SSH public key", src=StringIO(public + "\n"), dest=f"{SSH_DIR}/ssh_key.pub",
        user="postgres", group="postgres", mode="644",
    )
    files.put(
        name="Upload the backup remote's host key", src=StringIO(host.data.backup_remote_host_key.strip() + "\n"),
        dest=f"{SSH_DIR}/known_hosts", user="postgres", group="postgres", mode="644",
    )
