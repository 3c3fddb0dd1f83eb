"""The project's internal CA: TLS for services on the private network (PostgreSQL, Redis).

Its key stays in the inventory's secret store on the control machine; hosts receive only their
own key and certificate and the CA certificate.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from postyard.secrets import SecretStore

__all__ = ["HostCertificate", "ca_certificate_pem", "host_certificate"]

CA_LIFETIME = datetime.timedelta(days=3650)
HOST_LIFETIME = datetime.timedelta(days=397)
RENEW_BEFORE = datetime.timedelta(days=30)


@dataclass(frozen=True)
class HostCertificate:
    key_pem: str
    certificate_pem: str


def _new_key_pem() -> bytes:
    return ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _ca(store: SecretStore) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = serialization.load_pem_private_key(store.get_bytes("internal-ca.key", _new_key_pem), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)

    def issue_ca() -> bytes:
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Postyard internal CA")])
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name).issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(_now() - datetime.timedelta(minutes=5))
            .not_valid_after(_now() + CA_LIFETIME)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        return certificate.public_bytes(serialization.Encoding.PEM)

    return key, x509.load_pem_x509_certificate(store.get_bytes("internal-ca.crt", issue_ca))


def ca_certificate_pem(store: SecretStore) -> str:
    return _ca(store)[1].public_bytes(serialization.Encoding.PEM).decode()


def _names(certificate: x509.Certificate) -> set[str]:
    san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return {str(n) for n in san.get_values_for_type(x509.DNSName)} | {
        str(a) for a in san.get_values_for_type(x509.IPAddress)
    }


def host_certificate(store: SecretStore, host: str, names: list[str]) -> HostCertificate:
    """A server certificate for host, valid for names (DNS names or IP addresses).

    Reissued when the names change or fewer than 30 days remain; otherwise the stored one is
    returned unchanged, so deploys stay idempotent.
    """
    ca_key, ca_cert = _ca(store)
    key_pem = store.get_bytes(f"tls-{host}.key", _new_key_pem)
    cert_path = store.path(f"tls-{host}.crt")
    if cert_path.exists():
        existing = x509.load_pem_x509_certificate(cert_path.read_bytes())
        if _names(existing) == set(names) and existing.not_valid_after_utc - _now() > RENEW_BEFORE:
            return HostCertificate(key_pem.decode(), cert_path.read_text())
        cert_path.unlink()

    key = serialization.load_pem_private_key(key_pem, None)
    alternative: list[x509.GeneralName] = []
    for name in names:
        try:
            alternative.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            alternative.append(x509.DNSName(name))
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_now() - datetime.timedelta(minutes=5))
        .not_valid_after(_now() + HOST_LIFETIME)
        .add_extension(x509.SubjectAlternativeName(alternative), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = store.get_bytes(f"tls-{host}.crt", lambda: certificate.public_bytes(serialization.Encoding.PEM))
    return HostCertificate(key_pem.decode(), pem.decode())
