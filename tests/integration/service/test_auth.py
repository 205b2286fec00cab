"""Bearer tokens with scopes, through a live server of the test's own on loopback.

The server reads over the in-memory online store: the token check comes before any backend, and
a call its token lets through is told apart from a refused one by what follows it (bytes that are
not a request get INVALID_ARGUMENT, which only a call past the check can get). Tokens come from
a file (one as its SHA-256 digest only), as a mounted secret gives them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC
from datetime import datetime

import grpc
import pytest
from featurestore_client import FeatureStatus
from featurestore_client import FeatureStoreClient
from featurestore_client import PermissionDeniedError
from featurestore_client import RetryPolicy
from featurestore_client import UnauthenticatedError
from grpc_health.v1 import health_pb2
from grpc_health.v1 import health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2
from grpc_reflection.v1alpha import reflection_pb2_grpc

from featurestore._proto.v1 import anomaly_service_pb2
from featurestore._proto.v1 import dataset_service_pb2
from featurestore._proto.v1 import feature_service_pb2
from featurestore._proto.v1 import prediction_service_pb2
from featurestore.config import GRPC_SCOPES
from featurestore.config import load_settings
from featurestore.online import EntityKey
from featurestore.online import FeatureRow
from featurestore.online.testing import InMemoryOnlineStore
from featurestore.online.testing import market_catalog
from featurestore.service import SERVICE_NAMES
from featurestore.service.auth import METHOD_SCOPES
from featurestore.service.testing import ServerThread
from tests.bad_input import leaks

pytestmark = pytest.mark.integration

TOKENS = {
    "features:read": "reader-Tk.1",
    "predict": "predictor-Tk.2",
    "datasets:export": "exporter-Tk.3",
    "anomalies:subscribe": "subscriber-Tk.4",
}
"""One token per scope; the predictor's is configured only as its digest."""
EVERYTHING = "admin-Tk.5"
SERVER_STREAMING = {
    f"/{service.full_name}/{method.name}": method.server_streaming
    for module in (
        feature_service_pb2,
        prediction_service_pb2,
        dataset_service_pb2,
        anomaly_service_pb2,
    )
    for service in module.DESCRIPTOR.services_by_name.values()
    for method in service.methods
}
"""Every method of the store's services, and whether it streams its responses."""
NOT_A_REQUEST = b"\xff"
"""An incomplete varint tag: no request message decodes from it."""
NO_RETRY = RetryPolicy(max_attempts=1)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    """A server whose tokens come from a file, as a mounted secret gives them."""
    token_file = tmp_path_factory.mktemp("tokens") / "tokens"
    digest = hashlib.sha256(TOKENS["predict"].encode()).hexdigest()
    token_file.write_text(
        "# TOKEN SCOPE...: one token a line\n"
        f"{TOKENS['features:read']} features:read\n"
        f"sha256:{digest} predict\n"
        f"{TOKENS['datasets:export']} datasets:export\n"
        f"{TOKENS['anomalies:subscribe']} anomalies:subscribe\n"
        f"{EVERYTHING} *\n"
    )
    settings = load_settings(
        {
            "FEATURESTORE_GRPC__PORT": "0",
            "FEATURESTORE_SERVICE__AUTH_TOKENS_FILE": str(token_file),
        }
    )
    catalog = market_catalog()
    store = InMemoryOnlineStore(catalog)
    thread = ServerThread(settings, catalog, store_factory=lambda: store, probes={})
    row = FeatureRow("bars_1m", EntityKey.of(symbol="IBM"), datetime.now(UTC), {"close": 1.5})
    thread.run(store.write([row]))
    yield thread
    thread.stop(grace_s=0)


@pytest.fixture(scope="module")
def channel(server: ServerThread) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(server.target) as opened:
        yield opened


def _call(channel: grpc.Channel, method: str, token: str | None) -> grpc.RpcError:
    """Send bytes that are no request to ``method``; the error the call ends with."""
    metadata = () if token is None else (("authorization", f"Bearer {token}"),)
    with pytest.raises(grpc.RpcError) as info:
        if SERVER_STREAMING[method]:
            for _ in channel.unary_stream(method)(NOT_A_REQUEST, metadata=metadata, timeout=10):
                pass
        else:
            channel.unary_unary(method)(NOT_A_REQUEST, metadata=metadata, timeout=10)
    error: grpc.RpcError = info.value
    return error


def test_every_method_of_the_store_needs_a_scope() -> None:
    full_names = {name.rsplit("/", 1)[0].lstrip("/") for name in SERVER_STREAMING}
    assert full_names == set(SERVICE_NAMES)
    assert set(METHOD_SCOPES) == set(SERVER_STREAMING)
    assert set(METHOD_SCOPES.values()) == set(GRPC_SCOPES)
    # Both kinds of call are covered below.
    assert set(SERVER_STREAMING.values()) == {False, True}


@pytest.mark.parametrize("method", sorted(METHOD_SCOPES))
def test_each_refusal_is_precise_and_names_the_scope(channel: grpc.Channel, method: str) -> None:
    scope = METHOD_SCOPES[method]
    other = TOKENS["predict" if scope == "features:read" else "features:read"]
    refusals = {
        "missing": (_call(channel, method, None), grpc.StatusCode.UNAUTHENTICATED, "no bearer"),
        "wrong": (
            _call(channel, method, "not-a-token"),
            grpc.StatusCode.UNAUTHENTICATED,
            "not one this server accepts",
        ),
        "scope": (
            _call(channel, method, other),
            grpc.StatusCode.PERMISSION_DENIED,
            f"does not grant scope '{scope}'",
        ),
    }
    for case, (error, code, says) in refusals.items():
        details = error.details() or ""
        assert error.code() is code, (case, error.code(), details)
        assert says in details, (case, details)
        assert f"'{scope}'" in details and method.lstrip("/") in details, (case, details)
        assert not leaks(details)
        assert "Tk." not in details and "not-a-token" not in details, "a token in a message"
    # The method's own token, and the one with every scope, get past the check.
    for token in (TOKENS[scope], EVERYTHING):
        assert _call(channel, method, token).code() is grpc.StatusCode.INVALID_ARGUMENT


def test_a_malformed_authorization_header_is_unauthenticated(channel: grpc.Channel) -> None:
    method = "/featurestore.v1.FeatureService/GetOnlineFeatures"
    for header in (f"Basic {TOKENS['features:read']}", TOKENS["features:read"]):
        with pytest.raises(grpc.RpcError) as info:
            channel.unary_unary(method)(
                NOT_A_REQUEST, metadata=(("authorization", header),), timeout=10
            )
        assert info.value.code() is grpc.StatusCode.UNAUTHENTICATED
        assert "not one 'Bearer <token>'" in (info.value.details() or "")
    # The scheme is case-insensitive (RFC 6750).
    with pytest.raises(grpc.RpcError) as info:
        channel.unary_unary(method)(
            NOT_A_REQUEST,
            metadata=(("authorization", f"bearer {TOKENS['features:read']}"),),
            timeout=10,
        )
    assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT


def test_health_and_reflection_stay_open(channel: grpc.Channel) -> None:
    reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
    answers = reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5
    )
    listed = {s.name for answer in answers for s in answer.list_services_response.service}
    assert set(SERVICE_NAMES) <= listed


def test_the_sdk_sends_its_token_on_a_plaintext_loopback_channel(server: ServerThread) -> None:
    entities = {"symbol": ["IBM"]}
    with FeatureStoreClient(server.target, token=TOKENS["features:read"], retry=NO_RETRY) as sdk:
        read = sdk.get_online_features(["bars_1m:close"], entities=entities)
        assert read.features["bars_1m:close"][0].value == 1.5
        assert read.features["bars_1m:close"][0].status is FeatureStatus.PRESENT
        with pytest.raises(PermissionDeniedError, match="does not grant scope 'predict'"):
            sdk.predict("any-model", entities=entities)
        # A server stream: refused when it is opened, not retried.
        stream = sdk.stream_anomalies(symbols=["IBM"])
        with stream, pytest.raises(PermissionDeniedError, match="'anomalies:subscribe'"):
            next(iter(stream))
    anonymous = FeatureStoreClient(server.target, token="", retry=NO_RETRY)
    with anonymous, pytest.raises(UnauthenticatedError, match="'features:read'"):
        anonymous.get_online_features(["bars_1m:close"], entities=entities)


def test_the_sdk_takes_its_token_from_the_environment_when_given_none(
    server: ServerThread, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FEATURESTORE_TOKEN", TOKENS["features:read"])
    with FeatureStoreClient(server.target, retry=NO_RETRY) as sdk:
        read = sdk.get_online_features(["bars_1m:close"], entities={"symbol": ["IBM"]})
        assert read.features["bars_1m:close"][0].value == 1.5
    with (
        FeatureStoreClient(server.target, token="", retry=NO_RETRY) as anonymous,
        pytest.raises(UnauthenticatedError, match="'features:read'"),
    ):
        anonymous.get_online_features(["bars_1m:close"], entities={"symbol": ["IBM"]})
