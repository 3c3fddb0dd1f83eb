"""The internal CA renews certificates on deploy: close to expiry or with other names, and only then."""

from __future__ import annotations

import datetime
import ipaddress
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from cryptography.x509.verification import PolicyBuilder, Store

from postyard import internal_ca
from postyard.internal_ca import alternative_names, ca_certificate_pem, days_left, host_certificate, needs_renewal
from postyard.secrets import SecretStore

NAMES = ["db-1.example.net", "localhost", "127.0.0.1", "10.0.0.2"]


@pytest.fixture
def store(tmp_path: Path) -> SecretStore:
    return SecretStore(tmp_path / "secrets")


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _private_key(store: SecretStore, name: str) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(store.path(name).read_bytes(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return key


def _ca_certificate(store: SecretStore) -> x509.Certificate:
    return x509.load_pem_x509_certificate(store.path("internal-ca.crt").read_bytes())


def _stored_host_certificate(store: SecretStore, days: int, names: list[str] = NAMES,
                             usages: tuple[x509.ObjectIdentifier, ...] = internal_ca.HOST_KEY_USAGES) -> bytes:
    """Replace db-1's stored certificate with one the CA signed, expiring in days, for names and usages."""
    ca_key, host_key = _private_key(store, "internal-ca.key"), _private_key(store, "tls-db-1.key")
    alternative = alternative_names(names)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(_ca_certificate(store).subject)
        .public_key(host_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_now() - datetime.timedelta(days=300))
        .not_valid_after(_now() + datetime.timedelta(days=days, hours=1))
        .add_extension(x509.SubjectAlternativeName(alternative), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage(list(usages)), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = certificate.public_bytes(serialization.Encoding.PEM)
    store.path("tls-db-1.crt").write_bytes(pem)
    return pem


def _issued(pem: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem.encode())


def test_a_new_host_certificate_is_valid_for_the_host_lifetime_and_its_names(store):
    certificate = _issued(host_certificate(store, "db-1", NAMES).certificate_pem)
    assert days_left(certificate) == internal_ca.HOST_LIFETIME.days - 1
    assert not needs_renewal(certificate, NAMES)


def test_a_second_deploy_with_a_fresh_certificate_gets_the_same_bytes(store):
    first = host_certificate(store, "db-1", NAMES)
    assert host_certificate(store, "db-1", NAMES) == first


def test_a_certificate_with_10_days_left_is_reissued_with_the_same_key(store):
    first = host_certificate(store, "db-1", NAMES)
    old = _stored_host_certificate(store, days=10)
    renewed = host_certificate(store, "db-1", NAMES)
    assert renewed.certificate_pem.encode() != old
    assert renewed.key_pem == first.key_pem
    assert days_left(_issued(renewed.certificate_pem)) == internal_ca.HOST_LIFETIME.days - 1
    assert store.path("tls-db-1.crt").read_text() == renewed.certificate_pem
    assert host_certificate(store, "db-1", NAMES) == renewed  # and kept from then on


def test_a_certificate_with_300_days_left_is_kept(store):
    host_certificate(store, "db-1", NAMES)
    kept = _stored_host_certificate(store, days=300)
    assert host_certificate(store, "db-1", NAMES).certificate_pem.encode() == kept


def test_renewal_starts_exactly_below_the_threshold(store):
    host_certificate(store, "db-1", NAMES)
    at = _stored_host_certificate(store, days=internal_ca.RENEW_BEFORE_DAYS)
    assert host_certificate(store, "db-1", NAMES).certificate_pem.encode() == at
    below = _stored_host_certificate(store, days=internal_ca.RENEW_BEFORE_DAYS - 1)
    assert host_certificate(store, "db-1", NAMES).certificate_pem.encode() != below


def test_a_certificate_whose_names_changed_is_reissued_for_the_new_names(store):
    host_certificate(store, "db-1", NAMES)
    _stored_host_certificate(store, days=300, names=NAMES[:3])
    renewed = _issued(host_certificate(store, "db-1", NAMES).certificate_pem)
    assert not needs_renewal(renewed, NAMES)


def test_a_ca_certificate_that_would_expire_before_a_new_host_certificate_is_reissued_with_the_same_key(store):
    old_host = _issued(host_certificate(store, "db-1", NAMES).certificate_pem)
    ca_key = _private_key(store, "internal-ca.key")
    old_ca = _ca_certificate(store)
    short = (
        x509.CertificateBuilder()
        .subject_name(old_ca.subject).issuer_name(old_ca.subject)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(old_ca.not_valid_before_utc)
        .not_valid_after(_now() + internal_ca.HOST_LIFETIME - datetime.timedelta(days=1))
        .add_extension(old_ca.extensions.get_extension_for_class(x509.BasicConstraints).value, critical=True)
        .add_extension(old_ca.extensions.get_extension_for_class(x509.KeyUsage).value, critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    store.path("internal-ca.crt").write_bytes(short.public_bytes(serialization.Encoding.PEM))

    new_ca = x509.load_pem_x509_certificate(ca_certificate_pem(store).encode())
    assert new_ca.serial_number != short.serial_number
    assert days_left(new_ca) == internal_ca.CA_LIFETIME.days - 1
    assert new_ca.public_key() == ca_key.public_key()
    # a certificate the old one signed verifies against the new one: the CA renews without a flag day
    PolicyBuilder().store(Store([new_ca])).build_server_verifier(x509.DNSName(NAMES[0])).verify(old_host, [])
    assert ca_certificate_pem(store) == ca_certificate_pem(store)


def test_a_host_certificate_verifies_against_the_ca_for_each_of_its_names(store):
    certificate = _issued(host_certificate(store, "db-1", NAMES).certificate_pem)
    ca = x509.load_pem_x509_certificate(ca_certificate_pem(store).encode())
    for name in (x509.DNSName(NAMES[0]), x509.IPAddress(ipaddress.ip_address(NAMES[3]))):
        PolicyBuilder().store(Store([ca])).build_server_verifier(name).verify(certificate, [])


def test_a_certificate_for_servers_only_is_reissued_to_identify_its_host_as_a_client_too(store):
    host_certificate(store, "db-1", NAMES)
    old = _stored_host_certificate(store, days=300, usages=(ExtendedKeyUsageOID.SERVER_AUTH,))
    renewed = host_certificate(store, "db-1", NAMES)
    assert renewed.certificate_pem.encode() != old
    usages = _issued(renewed.certificate_pem).extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(usages) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
