"""Which certificate the mail services present: the host's ACME certificate (roles/tls.py) unless
the host's data names another pair."""

from __future__ import annotations

from pyinfra import host

__all__ = ["certificate_paths"]

ACME_CERTIFICATE = "/etc/letsencrypt/live/postyard/fullchain.pem"
ACME_PRIVATE_KEY = "/etc/letsencrypt/live/postyard/privkey.pem"


def certificate_paths() -> tuple[str, str]:
    return (host.data.get("mail_tls_certificate") or ACME_CERTIFICATE,
            host.data.get("mail_tls_private_key") or ACME_PRIVATE_KEY)
