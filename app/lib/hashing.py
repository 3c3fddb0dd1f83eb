"""Password hashing (argon2id, bcrypt $2y$), token hashing and random tokens."""

from __future__ import annotations

import hashlib
import hmac
import secrets

import bcrypt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

__all__ = [
    "bcrypt_2y",
    "hash_password",
    "random_token",
    "same",
    "sha256",
    "verify_password",
    "DUMMY_PASSWORD_HASH",
]

_hasher = PasswordHasher()
DUMMY_PASSWORD_HASH = _hasher.hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    """Argon2id hash of a user password."""
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """Whether the password matches the argon2id hash."""
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def bcrypt_2y(password: str, rounds: int = 10) -> str:
    """Bcrypt hash with the `$2y$` prefix Dovecot's BLF-CRYPT expects."""
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=rounds)).decode()
    return "$2y$" + hashed[4:]


def sha256(value: str | bytes) -> bytes:
    """SHA-256 digest of a token."""
    return hashlib.sha256(value.encode() if isinstance(value, str) else value).digest()


def random_token(nbytes: int = 32) -> str:
    """URL-safe random token of nbytes of entropy."""
    return secrets.token_urlsafe(nbytes)


def same(a: str, b: str) -> bool:
    """Constant-time comparison."""
    return hmac.compare_digest(a.encode(), b.encode())
