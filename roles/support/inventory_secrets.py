"""The current inventory's secrets and internal certificates, for roles to use at deploy time."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from io import StringIO
from pathlib import Path

from pyinfra import host
from pyinfra.api.exceptions import DeployError
from pyinfra.api.operation import OperationMeta
from pyinfra.operations import files

from postyard.internal_ca import ca_certificate_pem, host_certificate
from postyard.secrets import SecretStore

__all__ = [
    "INTERNAL_CA_PATH", "secret", "secret_store", "install_internal_ca", "install_internal_tls",
    "internal_certificate_path", "internal_key_path", "record_applied_secrets",
]

INTERNAL_TLS_DIR = "/etc/postyard/tls"
INTERNAL_CA_PATH = f"{INTERNAL_TLS_DIR}/internal-ca.crt"
APPLIED_DIR = "/etc/postyard/applied"


def secret_store() -> SecretStore:
    directory = host.data.get("secrets_dir")
    if not directory:
        raise DeployError(
            "this inventory sets no secrets_dir: name a directory outside the repository for its secrets"
        )
    return SecretStore(Path(directory))


def secret(name: str) -> str:
    return secret_store().get(name)


def record_applied_secrets(secrets: Mapping[str, str]) -> dict[str, OperationMeta]:
    """A fingerprint of each secret on the host, by name: each changes exactly when its secret does.

    Lets a role apply a password only when it is new (pyinfra cannot read one back). Their directory is
    created once, before them, rather than checked for each.
    """
    files.directory(name=f"Create {APPLIED_DIR}", path=APPLIED_DIR)
    return {
        name: files.put(
            name=f"Record the applied {name}", src=StringIO(_fingerprint(name, value) + "\n"),
            dest=f"{APPLIED_DIR}/{name}.sha256", mode="600", create_remote_dir=False,
        )
        for name, value in secrets.items()
    }


def _fingerprint(name: str, value: str) -> str:
    return hashlib.sha256(f"{name}\0{value}".encode()).hexdigest()


def internal_tls_names() -> list[str]:
    names = [host.data.get("hostname") or host.name, "localhost", "127.0.0.1"]
    if host.data.get("private_address"):
        names.append(host.data.private_address)
    return names


def install_internal_ca() -> OperationMeta:
    """The project's internal CA, which clients verify the private services' certificates against."""
    return files.put(
        name="Upload the internal CA certificate", src=StringIO(ca_certificate_pem(secret_store())),
        dest=INTERNAL_CA_PATH, mode="644",
    )


def internal_certificate_path(service: str) -> str:
    """Where a service's certificate from the internal CA lives on its host (its key beside it)."""
    return f"{INTERNAL_TLS_DIR}/{service}/server.crt"


def internal_key_path(service: str) -> str:
    return f"{INTERNAL_TLS_DIR}/{service}/server.key"


def install_internal_tls(service: str, owner: str) -> list[OperationMeta]:
    """This host's internal certificate for one service, under /etc/postyard/tls/<service>/.

    Renewed here, on deploy (postyard.internal_ca): the CA key never leaves the control machine.
    """
    store = secret_store()
    certificate = host_certificate(store, host.name, internal_tls_names())
    directory = f"{INTERNAL_TLS_DIR}/{service}"
    return [
        install_internal_ca(),
        files.directory(name=f"Create {directory}", path=directory, user="root", group=owner, mode="750"),
        files.put(
            name=f"Upload the {service} certificate", src=StringIO(certificate.certificate_pem),
            dest=internal_certificate_path(service), user=owner, group=owner, mode="644",
        ),
        files.put(
            name=f"Upload the {service} private key", src=StringIO(certificate.key_pem),
            dest=internal_key_path(service), user=owner, group=owner, mode="600",
        ),
    ]
