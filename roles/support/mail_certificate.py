"""Which certificate the mail services present: the host's ACME certificate (roles/tls.py) unless
the host's data names another pair."""

from __future__ import annotations

from pyinfra import host

from roles.tls import FULLCHAIN_PATH, PRIVKEY_PATH

__all__ = ["certificate_paths"]


def certificate_paths() -> tuple[str, str]:
    return (host.data.get("mail_tls_certificate") or FULLCHAIN_PATH,
            host.data.get("mail_tls_private_key") or PRIVKEY_PATH)
