"""TLS: a server with a certificate signed by a CA made at test time; the SDK trusts that CA."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from featurestore_client import (
    FeatureStatus,
    FeatureStoreClient,
    RetryPolicy,
    UnauthenticatedError,
    UnavailableError,
)

from featurestore.online import EntityKey, FeatureRow
from featurestore.service.testing import ServerThread

pytestmark = pytest.mark.integration


def _pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _certificates(folder: Path) -> tuple[Path, Path, bytes]:
    """A CA and a server certificate for 127.0.0.1 and localhost; returns cert, key, CA PEM."""
    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "featurestore test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    cert_file, key_file = folder / "server.pem", folder / "server.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(_pem(key))
    return cert_file, key_file, ca.public_bytes(serialization.Encoding.PEM)


def test_tls_with_a_private_ca_and_a_bearer_token(
    tmp_path: Path,
    start_server: Callable[..., ServerThread],
    write_rows: Callable[[list[FeatureRow]], None],
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    write_rows([FeatureRow("bars_1m", EntityKey.of(symbol="IBM"), now, {"close": 151.25})])
    cert_file, key_file, ca = _certificates(tmp_path)
    server = start_server(
        tls_cert_file=cert_file, tls_key_file=key_file, auth_tokens="s3cret features:read"
    )
    once = RetryPolicy(max_attempts=1)

    with FeatureStoreClient(server.target, root_certificates=ca, token="s3cret", retry=once) as c:
        result = c.get_online_features(["bars_1m:close"], entities={"symbol": ["IBM"]})
    assert result.features["bars_1m:close"][0].value == 151.25
    assert result.features["bars_1m:close"][0].status is FeatureStatus.PRESENT

    wrong = FeatureStoreClient(server.target, root_certificates=ca, token="nope", retry=once)
    with wrong, pytest.raises(UnauthenticatedError):
        wrong.get_online_features(["bars_1m:close"], entities={"symbol": ["IBM"]})
    # Without TLS, or trusting only the system's CAs, there is no connection at all.
    for client in (
        FeatureStoreClient(server.target, token="s3cret", retry=once, timeout_s=2),
        FeatureStoreClient(server.target, tls=True, token="s3cret", retry=once, timeout_s=2),
    ):
        with client, pytest.raises(UnavailableError):
            client.get_online_features(["bars_1m:close"], entities={"symbol": ["IBM"]})
