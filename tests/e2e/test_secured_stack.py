"""The secured local stack: every connection authenticated and encrypted; wrong passwords refused.

A stack of its own (data folder under ``tempfile.mkdtemp``, free ports) started with
``FEATURESTORE_SECURITY__ENABLED``: a CA and server certificate made at start, Kafka with a
SASL_SSL SCRAM-SHA-512 listener only, Redis on a TLS port with the ``default`` user off and one
ACL user, PostgreSQL with ``ssl=on`` and scram-sha-256 over TLS only, the schema registry on
that Kafka. One representative path runs through it: a real trade file ingested (the
``featurestore ingest`` command) -> the processor on Spark (its Kafka source over SASL_SSL: the
riskier path; the Kafka engine's consumer is configured like the replay this test also runs) -> rows
in PostgreSQL (``sslmode=verify-full``) and Redis (TLS + AUTH) -> read back, equal to an
independent recomputation of the log. Then a wrong password for each backend is refused with a
message naming the backend and the cause, without a traceback. The schema registry's basic-auth
user and the gRPC bearer tokens are none of the test's doing: the secured settings made them
(``featurestore/security.py``), and the registry and a gRPC server built from the same settings
refuse a caller without them, and a token of another scope.

Only this module runs secured: the rest of the suite runs against the open stack (the CI time
budget has no room for a second, secured run of everything).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import grpc
import pandas as pd
import psycopg
import pytest
import redis
import requests

from featurestore._proto.v1 import feature_service_pb2
from featurestore._proto.v1 import types_pb2
from featurestore.apply import apply_definitions
from featurestore.config import Settings
from featurestore.config import settings_env
from featurestore.definitions import Definitions
from featurestore.definitions import market_definitions
from featurestore.online.testing import market_catalog
from featurestore.processor_files import processor_log
from featurestore.security import credentials_file
from featurestore.service.testing import ServerThread
from featurestore.stack.process import stop_group
from featurestore.stack.processors import start_processor
from tests.e2e.processors_support import MARKET
from tests.e2e.processors_support import logged_trades
from tests.e2e.processors_support import oracle_rows
from tests.e2e.processors_support import private_stack
from tests.e2e.processors_support import read_online
from tests.e2e.processors_support import read_table
from tests.e2e.processors_support import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(600)]

VIEW = "bars_1m"
FEATURES = ["open", "high", "low", "close", "volume", "trade_count", "vwap"]
TRADES = "20131007_aig_Trade_Tick.csv.gz"


@pytest.fixture(scope="module")
def secured() -> Iterator[Settings]:
    env = {
        "FEATURESTORE_SECURITY__ENABLED": "true",
        "FEATURESTORE_KAFKA__PASSWORD": f"kafka-{uuid.uuid4().hex}",
        "FEATURESTORE_POSTGRES__PASSWORD": f"pg-{uuid.uuid4().hex}",
        "FEATURESTORE_REDIS__PASSWORD": f"redis-{uuid.uuid4().hex}",
    }
    # Kafka's JVM took 75 s to start alone on 2 cores at load 18 (90 s is its limit).
    with private_stack("featurestore-secured-", env, start_timeout_s=300.0) as stack:
        yield stack.settings


def _cli(settings: Settings, *args: str, **overrides: str) -> subprocess.CompletedProcess[str]:
    """``featurestore <args>`` with the stack's settings, some of them overridden."""
    env = {**os.environ, **settings_env(settings), **overrides}
    return subprocess.run(
        [sys.executable, "-m", "featurestore.cli", *args],
        env=env, capture_output=True, text=True, timeout=180,
    )  # fmt: skip


def _online(settings: Settings, defs: Definitions, topic: str, symbol: str) -> dict[str, Any]:
    """The online row of ``symbol`` through the store's read path (TLS + AUTH)."""
    from featurestore.online.base import EntityKey
    from featurestore.online.base import FeatureRef

    refs = [FeatureRef(VIEW, name) for name in FEATURES]
    result = read_online(settings, defs, topic, [EntityKey.of(symbol=symbol)], refs)
    return {
        ref.feature: column[0].value
        for ref, column in zip(result.refs, result.columns, strict=True)
    }


def test_a_trade_file_goes_through_the_secured_stack(secured: Settings) -> None:
    settings = secured
    run = uuid.uuid4().hex[:8]
    topic, name = f"secured-trades-{run}", f"secured-{run}"
    ingested = _cli(settings, "ingest", "files", "--topic", topic, str(MARKET / TRADES))
    assert ingested.returncode == 0, ingested.stdout[-2000:] + ingested.stderr[-3000:]
    defs = market_definitions(
        f"secured_{run}", table_prefix=f"secured_{run}_", source_topic=topic, ttl=timedelta(0)
    )
    apply_definitions(settings, defs)  # Feast's SQL registry, over TLS
    want = oracle_rows(logged_trades(settings, topic), [defs.view(VIEW)])[VIEW]
    assert len(want) > 100

    log = processor_log(settings, name)
    processor = start_processor(settings, name, defs.project, topic, "--engine", "spark")
    table = defs.view(VIEW).source.table
    try:

        def complete() -> bool:
            assert processor.poll() is None, log.read_text()[-4000:]
            return len(read_table(settings, table)) >= len(want)

        try:
            wait_for(complete, 420, "the offline table to hold every row")
        except AssertionError as exc:
            rows = len(read_table(settings, table))
            raise AssertionError(
                f"{exc}: {rows} of {len(want)}; {log.read_text()[-3000:]}"
            ) from exc
        got = read_table(settings, table)
        cols = ["symbol", "event_us", *FEATURES]
        pd.testing.assert_frame_equal(
            got[cols].reset_index(drop=True), want[cols], check_dtype=False, rtol=1e-9,
            atol=1e-12,
        )  # fmt: skip
        last = want.iloc[-1]
        wait_for(
            lambda: _online(settings, defs, topic, str(last["symbol"]))["close"] is not None,
            60,
            "the online row",
        )
        online = _online(settings, defs, topic, str(last["symbol"]))
        for feature in FEATURES:
            assert online[feature] == pytest.approx(last[feature], rel=1e-9), feature
    finally:
        stop_group(processor)


def test_the_servers_refuse_plaintext_and_anonymous_clients(secured: Settings) -> None:
    pg, cfg = secured.postgres, secured.redis
    with pytest.raises(psycopg.OperationalError, match=r"no pg_hba\.conf entry|SSL off"):
        psycopg.connect(pg.dsn, sslmode="disable", connect_timeout=5).close()
    anonymous = redis.Redis(
        host=cfg.host, port=cfg.port, ssl=True, ssl_ca_certs=str(cfg.ca_file), socket_timeout=5
    )
    with pytest.raises(redis.exceptions.AuthenticationError):
        anonymous.ping()
    anonymous.close()
    plain = redis.Redis(host=cfg.host, port=cfg.port, socket_timeout=5)
    with pytest.raises(redis.exceptions.ConnectionError):
        plain.ping()
    plain.close()


REFUSALS = {
    "kafka": ("FEATURESTORE_KAFKA__PASSWORD", "Authentication failed"),
    "redis": ("FEATURESTORE_REDIS__PASSWORD", "invalid username-password pair"),
    "postgres": ("FEATURESTORE_POSTGRES__PASSWORD", "password authentication failed"),
}


def test_stack_check_passes_with_the_right_passwords(secured: Settings) -> None:
    checked = _cli(secured, "stack", "check")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.splitlines() == ["kafka: ok", "redis: ok", "postgres: ok"]


def test_a_wrong_password_is_refused_clearly(secured: Settings) -> None:
    """One run with every password wrong (each CLI start costs seconds): a line per backend."""
    wrong = {variable: f"not-the-{backend}-password" for backend, (variable, _) in REFUSALS.items()}
    checked = _cli(secured, "stack", "check", **wrong)
    assert checked.returncode == 1, checked.stdout + checked.stderr
    lines = dict(line.split(": ", 1) for line in checked.stdout.splitlines())
    assert set(lines) == set(REFUSALS), checked.stdout
    names = {"kafka": "Kafka at", "redis": "online store (Redis)", "postgres": "(PostgreSQL)"}
    for backend, (_, says) in REFUSALS.items():
        assert names[backend] in lines[backend] and says in lines[backend], checked.stdout
    assert "not-the-" not in checked.stdout + checked.stderr
    assert "Traceback" not in checked.stdout + checked.stderr


def test_ingest_with_a_wrong_kafka_password_stops_with_the_reason(secured: Settings) -> None:
    done = _cli(
        secured, "ingest", "files", "--topic", "secured-refused", str(MARKET / TRADES),
        FEATURESTORE_KAFKA__PASSWORD="not-the-password",
    )  # fmt: skip
    assert done.returncode != 0
    assert "Kafka at" in done.stderr and "Authentication failed" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and "not-the-password" not in done.stderr


def test_the_registry_and_grpc_accept_only_the_credentials_the_stack_made(
    secured: Settings,
) -> None:
    """Nothing set by hand: the file the secured settings made is what both servers accept."""
    path = credentials_file(secured.data_dir)
    assert path.stat().st_mode & 0o777 == 0o600
    made = json.loads(path.read_text())
    url = f"{secured.schema_registry.url}/subjects"
    assert requests.get(url, timeout=10).status_code == 401
    user = made["schema_registry"]["user"]
    assert requests.get(url, auth=(user, "not-it"), timeout=10).status_code == 401
    password = made["schema_registry"]["password"]
    assert requests.get(url, auth=(user, password), timeout=10).status_code == 200

    # A gRPC server built from the same settings (as `featurestore serve` is), reading Redis
    # over TLS as the ACL user.
    settings = secured.model_copy(update={"grpc": secured.grpc.model_copy(update={"port": 0})})
    server = ServerThread(settings, market_catalog(), probes={})
    request = feature_service_pb2.GetOnlineFeaturesRequest()
    request.features.features.append("bars_1m:close")
    request.entities["symbol"].values.append(types_pb2.Value(string_value="NOSUCH"))
    tokens = made["grpc_tokens"]
    try:
        with grpc.insecure_channel(server.target) as channel:
            call = channel.unary_unary(
                "/featurestore.v1.FeatureService/GetOnlineFeatures",
                request_serializer=feature_service_pb2.GetOnlineFeaturesRequest.SerializeToString,
                response_deserializer=feature_service_pb2.GetOnlineFeaturesResponse.FromString,
            )
            for token, code in [
                (None, grpc.StatusCode.UNAUTHENTICATED),
                ("not-a-token", grpc.StatusCode.UNAUTHENTICATED),
                (tokens["predict"], grpc.StatusCode.PERMISSION_DENIED),
            ]:
                metadata = () if token is None else (("authorization", f"Bearer {token}"),)
                with pytest.raises(grpc.RpcError) as refused:
                    call(request, metadata=metadata, timeout=10)
                assert refused.value.code() == code, refused.value.details()
                assert "features:read" in str(refused.value.details())
            for scope in ("features:read", "*"):
                reply = call(
                    request, metadata=(("authorization", f"Bearer {tokens[scope]}"),), timeout=10
                )
                assert list(reply.columns[0].statuses) == [types_pb2.FEATURE_STATUS_NOT_FOUND]
    finally:
        server.stop(grace_s=0)
