"""DKIM key pairs: RSA-2048 (default) or Ed25519, and the DNS TXT value that publishes them."""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

__all__ = ["DkimKeyPair", "generate_key_pair", "new_selector", "txt_value"]

ALGORITHMS = {"rsa": "rsa-sha256", "ed25519": "ed25519-sha256"}


@dataclass(frozen=True)
class DkimKeyPair:
    """A private key (PEM, PKCS#8) and the `p=` value of its public key."""

    algorithm: str
    private_pem: bytes
    public_value: str


def generate_key_pair(kind: str = "rsa") -> DkimKeyPair:
    """Generate a key pair; `kind` is rsa (2048 bits) or ed25519."""
    if kind == "ed25519":
        private_ed = ed25519.Ed25519PrivateKey.generate()
        raw = private_ed.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        pem = private_ed.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption())
        return DkimKeyPair(ALGORITHMS["ed25519"], pem, base64.b64encode(raw).decode())
    private_rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    der = private_rsa.public_key().public_bytes(serialization.Encoding.DER,
                                                serialization.PublicFormat.SubjectPublicKeyInfo)
    pem = private_rsa.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
    return DkimKeyPair(ALGORITHMS["rsa"], pem, base64.b64encode(der).decode())


def new_selector() -> str:
    """A fresh selector, dated so rotations read in order."""
    return f"pyd{datetime.now(UTC):%Y%m}{secrets.token_hex(3)}"


def txt_value(algorithm: str, public_value: str) -> str:
    """The TXT record value for a DKIM public key."""
    kind = "ed25519" if algorithm.startswith("ed25519") else "rsa"
    return f"v=DKIM1; k={kind}; p={public_value}"
