"""Keys made on the control machine and kept outside git: files of mode 0600 in the secrets directory."""

from __future__ import annotations

import base64
import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

__all__ = ["secrets_directory", "write_secret", "ssh_keypair", "dkim_public_key", "random_key"]


def secrets_directory(path: Path) -> Path:
    """The directory, created with mode 0700 when missing."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.chmod(0o700)
    return path


def write_secret(path: Path, content: bytes) -> Path:
    """Write content to a new file that only its owner can read (0600 from the first byte)."""
    secrets_directory(path.parent)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(content)
    return path


def ssh_keypair(directory: Path) -> tuple[Path, str]:
    """(private key path, public key line): an Ed25519 key made once and reused."""
    private = directory / "id_ed25519"
    if not private.exists():
        key = ed25519.Ed25519PrivateKey.generate()
        write_secret(private, key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()))
        public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        (directory / "id_ed25519.pub").write_bytes(public + b" postyard\n")
    return private, (directory / "id_ed25519.pub").read_text().strip()


def dkim_public_key(directory: Path, domain: str, selector: str) -> str:
    """Base64 public key for the DKIM record; the RSA-2048 private key stays in dkim/<selector>.<domain>.key."""
    private = directory / "dkim" / f"{selector}.{domain}.key"
    if not private.exists():
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        write_secret(private, key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    loaded = serialization.load_pem_private_key(private.read_bytes(), password=None)
    der = loaded.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(der).decode()


def random_key(path: Path, size: int = 64) -> Path:
    """A file of random bytes (a LUKS key), made once."""
    if not path.exists():
        write_secret(path, os.urandom(size))
    return path
