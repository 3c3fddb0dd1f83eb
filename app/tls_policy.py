"""The TLS policy of every listener, as data, and its spelling for each server that enforces it.

TLS 1.2 at least, 1.3 on; for TLS 1.2 only ECDHE key exchange with AEAD ciphers (Mozilla
"intermediate" without DHE). Postfix and Dovecot list the 1.2 suites in the server's order;
PostgreSQL and Redis name them by class.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = [
    "DOVECOT", "ETCD", "GRANIAN_MIN_PROTOCOL", "HAPROXY", "IANA_NAMES", "MIN_PROTOCOL", "POSTFIX", "POSTGRESQL",
    "PROTOCOLS", "REDIS", "TLS12_CIPHERS", "TLS12_CIPHER_CLASSES", "TLS12_SUITES", "TLS13_SUITES", "granian_protocol",
    "is_policy_tls12_suite",
]

# OpenSSL's spelling of versions; Python's ssl reports a session's version the same way.
MIN_PROTOCOL = "TLSv1.2"
PROTOCOLS: tuple[str, ...] = (MIN_PROTOCOL, "TLSv1.3")

# OpenSSL names, in the order the server prefers them.
TLS12_SUITES: tuple[str, ...] = (
    "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES256-GCM-SHA384", "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305",
)
TLS12_CIPHERS = ":".join(TLS12_SUITES)
# The same suites as OpenSSL cipher classes.
TLS12_CIPHER_CLASSES = "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL"
TLS13_SUITES: tuple[str, ...] = ("TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256", "TLS_AES_128_GCM_SHA256")

# Template variables (`tls_policy.<name>`) of each server's configuration.
POSTFIX: Mapping[str, str] = {"protocols": f">={MIN_PROTOCOL}", "tls12_ciphers": TLS12_CIPHERS}
DOVECOT: Mapping[str, str] = {"min_protocol": MIN_PROTOCOL, "tls12_ciphers": TLS12_CIPHERS}
POSTGRESQL: Mapping[str, str] = {"min_protocol": MIN_PROTOCOL, "tls12_ciphers": TLS12_CIPHER_CLASSES}
REDIS: Mapping[str, str] = {"protocols": " ".join(PROTOCOLS), "tls12_ciphers": TLS12_CIPHER_CLASSES,
                            "tls13_suites": ":".join(TLS13_SUITES)}
# The same suites by their IANA names, which Go (etcd) uses.
IANA_NAMES: Mapping[str, str] = {
    "ECDHE-ECDSA-AES128-GCM-SHA256": "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "ECDHE-RSA-AES128-GCM-SHA256": "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384": "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "ECDHE-RSA-AES256-GCM-SHA384": "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305": "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    "ECDHE-RSA-CHACHA20-POLY1305": "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
}
# etcd names only TLS 1.2 suites: naming only AEAD ones refuses TLS 1.0 and 1.1 too (Go servers accepted them
# before Go 1.22); TLS 1.3 stays on, its suites fixed.
ETCD: Mapping[str, str] = {"cipher_suites": ",".join(IANA_NAMES[suite] for suite in TLS12_SUITES)}
# HAProxy's checks of Patroni's REST API, and any other HAProxy TLS.
HAPROXY: Mapping[str, str] = {"min_protocol": MIN_PROTOCOL, "tls12_ciphers": TLS12_CIPHERS}


def granian_protocol(version: str) -> str:
    """granian's spelling of a version (`--ssl-protocol-min tls1.2`)."""
    return version.replace("TLSv", "tls")


GRANIAN_MIN_PROTOCOL = granian_protocol(MIN_PROTOCOL)

_WEAK = ("anon", "CBC", "RC4", "3DES", "NULL", "EXPORT")


def is_policy_tls12_suite(iana_name: str) -> bool:
    """Whether a TLS 1.2 suite a scan found (IANA name) is one the policy allows: ECDHE with AEAD."""
    return (iana_name.startswith("TLS_ECDHE_") and ("_GCM_" in iana_name or "CHACHA20_POLY1305" in iana_name)
            and not any(weak in iana_name for weak in _WEAK))
