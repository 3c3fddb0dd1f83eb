"""The project's internal CA: TLS for services on the private network (PostgreSQL, Redis).

Its key stays in the inventory's secret store on the control machine; hosts receive only their
own key and certificate and the CA certificate. So no host can re-sign its own certificate: each
deploy renews the ones that are close to expiry, and the verification suite fails before they lapse.
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

__all__ = [
    "alternative_names",
    "CA_LIFETIME", "HOST_LIFETIME", "RENEW_BEFORE_DAYS", "HostCertificate", "ca_certificate_pem", "days_left",
    "host_certificate", "needs_renewal",
]

CA_LIFETIME = datetime.timedelta(days=3650)
HOST_LIFETIME = datetime.timedelta(days=397)
# A deploy renews a host certificate with fewer days left; the verification suite fails below it.
RENEW_BEFORE_DAYS = 30
# A host's certificate serves its services and, where one service calls another as a client that must show a
# certificate (etcd's peers, Patroni to etcd), identifies the host.
HOST_KEY_USAGES = (ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH)


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


def days_left(certificate: x509.Certificate, now: datetime.datetime | None = None) -> int:
    """Whole days until the certificate expires (negative once it has)."""
    return (certificate.not_valid_after_utc - (now or _now())).days


def needs_renewal(certificate: x509.Certificate, names: list[str], now: datetime.datetime | None = None) -> bool:
    """Whether a deploy must issue a new certificate: its names or uses changed, or expiry is near."""
    try:
        usages = set(certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    except x509.ExtensionNotFound:
        usages = set()
    return (_names(certificate) != set(names) or usages != set(HOST_KEY_USAGES)
            or days_left(certificate, now) < RENEW_BEFORE_DAYS)


def _ca(store: SecretStore) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """The CA's key and certificate, the certificate reissued (same key and name) before it could
    expire ahead of a host certificate it signs: certificates it signed earlier still verify."""
    key = serialization.load_pem_private_key(store.get_bytes("internal-ca.key", _new_key_pem), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    cert_path = store.path("internal-ca.crt")
    if cert_path.exists():
        existing = x509.load_pem_x509_certificate(cert_path.read_bytes())
        if existing.not_valid_after_utc - _now() < HOST_LIFETIME:
            cert_path.unlink()

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


def alternative_names(names: list[str]) -> list[x509.GeneralName]:
    """Each name as a subjectAltName entry: an IP address where it parses as one, else a DNS name."""
    alternative: list[x509.GeneralName] = []
    for name in names:
        try:
            alternative.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            alternative.append(x509.DNSName(name))
    return alternative


def _names(certificate: x509.Certificate) -> set[str]:
    san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return {str(n) for n in san.get_values_for_type(x509.DNSName)} | {
        str(a) for a in san.get_values_for_type(x509.IPAddress)
    }


def host_certificate(store: SecretStore, host: str, names: list[str]) -> HostCertificate:
    """A server certificate for host, valid for names (DNS names or IP addresses).

    Reissued (same key) when the names change or fewer than RENEW_BEFORE_DAYS days remain; otherwise
    the stored one is returned unchanged, so deploys stay idempotent.
    """
    ca_key, ca_cert = _ca(store)
    key_pem = store.get_bytes(f"tls-{host}.key", _new_key_pem)
    cert_path = store.path(f"tls-{host}.crt")
    if cert_path.exists():
        existing = x509.load_pem_x509_certificate(cert_path.read_bytes())
        if not needs_renewal(existing, names):
            return HostCertificate(key_pem.decode(), cert_path.read_text())
        cert_path.unlink()

    key = serialization.load_pem_private_key(key_pem, None)
    alternative = alternative_names(names)
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
        .add_extension(x509.ExtendedKeyUsage(list(HOST_KEY_USAGES)), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = store.get_bytes(f"tls-{host}.crt", lambda: certificate.public_bytes(serialization.Encoding.PEM))
    return HostCertificate(key_pem.decode(), pem.decode())
