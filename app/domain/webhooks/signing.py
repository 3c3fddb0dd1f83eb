"""Standard Webhooks signing, also under Svix's header names: `whsec_` secrets, `v1,` HMAC-SHA256 signatures,
several during a rotation."""

from __future__ import annotations

import base64
import os
import uuid
from collections.abc import Sequence
from datetime import datetime

from standardwebhooks.webhooks import Webhook

__all__ = ["associated_data", "new_secret", "signed_headers"]


def new_secret() -> str:
    """A fresh signing secret: `whsec_` and 32 random bytes, base64."""
    return "whsec_" + base64.b64encode(os.urandom(32)).decode()


def associated_data(webhook_id: uuid.UUID) -> bytes:
    """Binds an encrypted secret to its webhook (AES-GCM associated data)."""
    return f"postyard-webhook:{webhook_id}".encode()


def signed_headers(secrets: Sequence[str], message_id: str, timestamp: datetime, body: str) -> dict[str, str]:
    """The `webhook-id`, `webhook-timestamp` and `webhook-signature` headers (one signature per secret), and the
    same values under the `svix-` names that Resend's receivers read."""
    signature = {
        "id": message_id,
        "timestamp": str(int(timestamp.timestamp())),
        "signature": " ".join(Webhook(s).sign(message_id, timestamp, body) for s in secrets),
    }
    headers = {f"{prefix}-{name}": value for prefix in ("webhook", "svix") for name, value in signature.items()}
    return headers | {"content-type": "application/json", "user-agent": "Postyard-Webhooks/1"}
