"""Days left on every certificate each host presents or holds, listed at the end of the run.

Each deploy renews a certificate from the internal CA with fewer than RENEW_BEFORE_DAYS days left
(the CA key stays on the control machine, so no host can renew its own), so fewer here means no
deploy ran for too long. certbot.timer renews the ACME certificate at 30 days left, so fewer than
ACME_MIN_DAYS means its renewals are failing.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from cryptography import x509

from postyard.exposure import EXPOSURE, Exposure
from postyard.internal_ca import RENEW_BEFORE_DAYS, days_left
from roles.support.inventory_secrets import INTERNAL_CA_PATH, internal_certificate_path
from roles.tls import FULLCHAIN_PATH

ACME_MIN_DAYS = 14
REDIS_CONF = "/etc/redis/redis.conf"


@dataclass(frozen=True)
class Listener:
    """How to fetch the certificate a TLS listener of the exposure table presents."""

    starttls: str | None  # openssl s_client's -starttls protocol; None: TLS from the first byte
    internal: bool  # the internal CA's certificate, else the ACME one (or the operator's own)
    private: bool = False  # it listens on the private address only, not on loopback


LISTENERS: dict[str, Listener] = {
    "smtp": Listener("smtp", internal=False),
    "submissions": Listener(None, internal=False),
    "submission": Listener("smtp", internal=False),
    "https": Listener(None, internal=False),
    "imaps": Listener(None, internal=False),
    "postgresql": Listener("postgres", internal=True),
    "redis": Listener(None, internal=True),
    "patroni": Listener(None, internal=True, private=True),
    "etcd": Listener(None, internal=True, private=True),
    "etcd-peer": Listener(None, internal=True, private=True),
    "pgbackrest": Listener(None, internal=True, private=True),
    "pgbackrest-repository": Listener(None, internal=True, private=True),
}
WITHOUT_TLS = {"ssh", "http-acme", "http-acme-relay", "api-health"}
# Listeners that present a certificate another row's test already fetches, and cannot be asked directly.
PRESENTED_ELSEWHERE = {
    # the API proxy speaks only after a PROXY protocol header; it presents the host's certificate of 443
    "https-balanced": "https",
}
TLS_ROWS = [row for row in EXPOSURE if row.service in LISTENERS]

# path on the host -> whether it comes from the internal CA
HELD: dict[str, bool] = {
    INTERNAL_CA_PATH: True,
    internal_certificate_path("postgresql"): True,
    internal_certificate_path("redis"): True,
    internal_certificate_path("etcd"): True,
    internal_certificate_path("pgbackrest"): True,
    FULLCHAIN_PATH: False,
}


def check_days_left(certificate: x509.Certificate, label: str, internal: bool, report) -> None:
    days = days_left(certificate)
    minimum = RENEW_BEFORE_DAYS if internal else ACME_MIN_DAYS
    report(f"{label}: {days} days left (until {certificate.not_valid_after_utc:%Y-%m-%d}, minimum {minimum})")
    assert days >= minimum, f"{label} expires in {days} days, fewer than {minimum}: " + (
        "deploy to renew it" if internal else "certbot's renewals fail: see `journalctl -u certbot`"
    )


def test_every_row_of_the_exposure_table_is_either_checked_here_or_speaks_no_tls():
    assert {row.service for row in EXPOSURE} == set(LISTENERS) | WITHOUT_TLS | set(PRESENTED_ELSEWHERE)
    assert set(PRESENTED_ELSEWHERE.values()) <= set(LISTENERS)


@pytest.mark.parametrize("row", TLS_ROWS, ids=[f"{row.service}-{row.port}" for row in TLS_ROWS])
def test_each_certificate_a_host_presents_has_enough_days_left(infra_host, host, row: Exposure, report_days_left):
    if row not in infra_host.exposures:
        pytest.skip(f"{infra_host.name} does not listen on {row.port}")
    if row.service == "redis" and not host.file(REDIS_CONF).contains(f"^tls-port {row.port}"):
        pytest.skip("Redis speaks TLS only where its clients are on other hosts")
    listener = LISTENERS[row.service]
    starttls = f"-starttls {listener.starttls} " if listener.starttls else ""
    fetched = host.run(
        f"timeout 20 openssl s_client {starttls}-connect %s:%s -servername %s </dev/null 2>/dev/null"
        " | openssl x509", infra_host.private_address if listener.private else "127.0.0.1", str(row.port),
        infra_host.fqdn,
    )
    assert fetched.rc == 0, f"no certificate from {row.service} on {row.port}: {fetched.stderr}"
    certificate = x509.load_pem_x509_certificate(fetched.stdout.encode())
    check_days_left(certificate, f"{infra_host.name} {row.service} :{row.port}", listener.internal, report_days_left)


@pytest.mark.parametrize("path", list(HELD))
def test_each_certificate_a_host_holds_has_enough_days_left(infra_host, host, path: str, report_days_left):
    held = host.file(path)
    if not held.exists:
        pytest.skip(f"{infra_host.name} holds no {path}")
    certificate = x509.load_pem_x509_certificates(held.content)[0]
    check_days_left(certificate, f"{infra_host.name} {path}", HELD[path], report_days_left)
