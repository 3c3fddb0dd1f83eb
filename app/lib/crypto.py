"""AES-256-GCM encryption of stored secrets under data keys kept outside the database."""

from __future__ import annotations

import os
from dataclasses import dataclass

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = ["Keyring", "NONCE_BYTES", "dkim_associated_data"]

NONCE_BYTES = 12


def dkim_associated_data(domain: str, selector: str) -> bytes:
    """Associated data binding a DKIM private key ciphertext to its domain and selector."""
    return f"postyard-dkim:{domain.lower()}:{selector}".encode()


@dataclass(frozen=True)
class Keyring:
    """Data keys by id; new ciphertexts use the active key, old ones decrypt by their stored id.

    Layout of every ciphertext: nonce (12 random bytes) || AES-256-GCM ciphertext || tag (16 bytes),
    as produced by `AESGCM.encrypt(nonce, plaintext, associated_data)` with the nonce prepended.
    The key id is stored in its own column beside the ciphertext. DKIM private keys (PEM, PKCS#8)
    use the associated data `postyard-dkim:<domain lowercase>:<selector>` (UTF-8), so the mail
    host's DKIM sync decrypts with `AESGCM(key).decrypt(blob[:12], blob[12:], associated_data)`.
    """

    keys: dict[str, bytes]
    active_id: str

    def encrypt(self, plaintext: bytes, associated_data: bytes) -> tuple[str, bytes]:
        """Encrypt under the active key; returns (key id, nonce||ciphertext||tag)."""
        if self.active_id not in self.keys:
            raise RuntimeError("no data key configured (POSTYARD_DATA_KEYS or POSTYARD_DATA_KEY_FILE)")
        nonce = os.urandom(NONCE_BYTES)
        sealed = AESGCM(self.keys[self.active_id]).encrypt(nonce, plaintext, associated_data)
        return self.active_id, nonce + sealed

    def decrypt(self, key_id: str, blob: bytes, associated_data: bytes) -> bytes:
        """Decrypt a ciphertext made by `encrypt` under the key it names."""
        key = self.keys.get(key_id)
        if key is None:
            raise KeyError(f"data key {key_id!r} is not configured")
        return AESGCM(key).decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], associated_data)
