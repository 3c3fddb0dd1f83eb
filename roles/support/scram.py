"""PostgreSQL SCRAM-SHA-256 verifiers made on the control machine, so a host is handed a verifier, never the
password (RFC 5802 and 7677, as PostgreSQL stores them in pg_authid)."""

from __future__ import annotations

import base64
import hashlib
import hmac

__all__ = ["ITERATIONS", "scram_verifier"]

ITERATIONS = 4096  # PostgreSQL's scram_iterations default


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def scram_verifier(password: str, salt: bytes, iterations: int = ITERATIONS) -> str:
    """`SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`; the password must be ASCII (SASLprep then
    leaves it as it is), as the generated ones are."""
    if not password.isascii():
        raise ValueError("only ASCII passwords are turned into verifiers here")
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    server_key = hmac.new(salted, b"Server Key", "sha256").digest()
    return f"SCRAM-SHA-256${iterations}:{_b64(salt)}${_b64(hashlib.sha256(client_key).digest())}:{_b64(server_key)}"
