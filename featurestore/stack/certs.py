"""The secured local stack's certificates: a CA of its own and one server certificate.

Made once under ``<data_dir>/certs`` (kept across restarts, so that clients holding the CA keep
trusting the servers) with the ``cryptography`` package: ``ca.pem`` (what every client trusts,
``FEATURESTORE_*__CA_FILE``), ``server.pem`` and ``server.key`` (Kafka, Redis and PostgreSQL
present the same one), valid for ``localhost``, ``127.0.0.1`` and the configured hosts. The
keys are unencrypted PKCS#8 files readable by their owner only; a production deployment uses
certificates of its own CA instead (see the README's Security section).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID
from cryptography.x509.oid import NameOID

from featurestore.config import Settings
from featurestore.stack.private_file import write_private

__all__ = ["Certificates", "ensure_certificates"]

_VALID = dt.timedelta(days=825)


@dataclass(frozen=True)
class Certificates:
    """Where the local stack's CA and server certificate are."""

    folder: Path

    @property
    def ca(self) -> Path:
        """The CA certificate clients trust (PEM)."""
        return self.folder / "ca.pem"

    @property
    def cert(self) -> Path:
        """The servers' certificate (PEM), signed by :attr:`ca`."""
        return self.folder / "server.pem"

    @property
    def key(self) -> Path:
        """The servers' private key (unencrypted PKCS#8 PEM, mode 0600)."""
        return self.folder / "server.key"

    @property
    def keystore(self) -> Path:
        """Key and certificate in one PEM file: Kafka's PEM key store (mode 0600)."""
        return self.folder / "server-keystore.pem"


def ensure_certificates(settings: Settings) -> Certificates:
    """The certificates under ``<data_dir>/certs``, made when missing or not for these hosts."""
    certs = Certificates(settings.data_dir.resolve() / "certs")
    hosts = sorted({"localhost", "127.0.0.1", settings.kafka.host, settings.redis.host,
                    settings.postgres.host})  # fmt: skip
    names = certs.folder / "hosts"
    current = names.read_text().split() if names.exists() else []
    if current == hosts and all(p.exists() for p in (certs.ca, certs.cert, certs.key)):
        return certs
    certs.folder.mkdir(parents=True, exist_ok=True)
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "featurestore local CA")])
    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + _VALID)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + _VALID)
        .add_extension(x509.SubjectAlternativeName(_alt_names(hosts)), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    write_private(certs.key, key_pem)
    write_private(certs.keystore, key_pem + cert_pem)
    _write_public(certs.cert, cert_pem)
    _write_public(certs.ca, ca.public_bytes(serialization.Encoding.PEM))
    names.write_text("\n".join(hosts) + "\n")
    return certs


def _alt_names(hosts: list[str]) -> list[x509.GeneralName]:
    """A DNS name per host, and an IP address per host that is one.

    An address is a DNS name too: librdkafka checks the host it was given against the DNS
    names, Java and Python against the IP addresses.
    """
    names: list[x509.GeneralName] = [x509.DNSName(host) for host in hosts]
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            continue
    return names


def _write_public(path: Path, data: bytes) -> None:
    """Write a certificate to ``path``, readable by every user (clients must trust it)."""
    path.write_bytes(data)
    path.chmod(0o644)
