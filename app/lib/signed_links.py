"""Links that carry their own authority: a payload signed with a key derived from the data keys, valid for a
while (itsdangerous). Each purpose has its own key, so a token for one kind of link opens no other."""

from __future__ import annotations

from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from itsdangerous import BadSignature, URLSafeTimedSerializer
from litestar import Request

from app.lib.crypto import Keyring

__all__ = ["BadLink", "LinkSigner", "absolute_link"]


class BadLink(Exception):
    """A link that was tampered with, made for another purpose, or has expired."""


def _derived(key: bytes, purpose: str) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=f"postyard-link:{purpose}".encode()).derive(key)


class LinkSigner:
    """Signs and reads the tokens of one purpose; the active data key signs, every configured one verifies."""

    def __init__(self, keyring: Keyring, purpose: str) -> None:
        if keyring.active_id not in keyring.keys:
            raise RuntimeError("no data key configured (POSTYARD_DATA_KEYS or POSTYARD_DATA_KEY_FILE)")
        others = [_derived(k, purpose) for key_id, k in keyring.keys.items() if key_id != keyring.active_id]
        # itsdangerous signs with the last key of the list and accepts any of them.
        secrets = [*others, _derived(keyring.keys[keyring.active_id], purpose)]
        self._serializer = URLSafeTimedSerializer(secrets, salt=purpose)

    def sign(self, payload: Any) -> str:
        """A URL-safe token carrying `payload` (JSON-serialisable) and the time it was made."""
        return str(self._serializer.dumps(payload))

    def read(self, token: str, max_age_seconds: int) -> Any:
        """The payload of a token made at most `max_age_seconds` ago; BadLink otherwise."""
        try:
            return self._serializer.loads(token, max_age=max_age_seconds)
        except BadSignature as error:  # SignatureExpired is one
            raise BadLink(str(error)) from None


def absolute_link(request: Request[Any, Any, Any], path_and_query: str) -> str:
    """A link under the API's configured public URL, else an https link on the host the request was made to."""
    public_url = request.app.state.services.settings.public_url
    base = public_url.rstrip("/") or f"https://{request.headers.get('host') or request.url.netloc}"
    return f"{base}{path_and_query}"
