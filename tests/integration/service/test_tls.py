"""TLS: a server with a certificate of a CA made at test time (as the stack makes its own)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC
from datetime import datetime
from pathlib import Path

import pytest
from featurestore_client import FeatureStatus
from featurestore_client import FeatureStoreClient
from featurestore_client import RetryPolicy
from featurestore_client import UnauthenticatedError
from featurestore_client import UnavailableError

from featurestore.config import Settings
from featurestore.online import EntityKey
from featurestore.online import FeatureRow
from featurestore.service.testing import ServerThread
from featurestore.stack.certs import ensure_certificates

pytestmark = pytest.mark.integration


def test_tls_with_a_private_ca_and_a_bearer_token(
    stack: Settings,
    tmp_path: Path,
    start_server: Callable[..., ServerThread],
    write_rows: Callable[[list[FeatureRow]], None],
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    write_rows([FeatureRow("bars_1m", EntityKey.of(symbol="IBM"), now, {"close": 151.25})])
    # The secured stack's own CA, made for this test under its own folder.
    certs = ensure_certificates(stack.model_copy(update={"data_dir": tmp_path}))
    ca = certs.ca.read_bytes()
    server = start_server(
        tls_cert_file=certs.cert, tls_key_file=certs.key, auth_tokens="s3cret features:read"
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
