"""The Go and TypeScript clients' examples (clients/go, clients/typescript) against a live server.

Each example is built the way its README says (``go build``, ``tsc``) and run twice against one
server over the stack's Redis, MLflow, PostgreSQL and Kafka: online features with every status,
Predict, an export (compared with the Python SDK's export of the same request) and StreamAnomalies
from a time, then resumed by the token the first run ended with, which must deliver exactly the
rest. The server wants a bearer token, which the examples send (``--token``); a short test runs
them with no token and with one of the wrong scope against a server of its own (no backends), and
sees each refusal named. The Go build uses Go's build cache (``go env GOCACHE``;
deploy/bootstrap.sh warms it), so only the first build on a machine compiles the dependencies.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
from collections.abc import Callable
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from featurestore_client import FeatureStoreClient

from featurestore.config import Settings
from featurestore.config import TopicSettings
from featurestore.config import load_settings
from featurestore.online import EntityKey
from featurestore.online import FeatureRow
from featurestore.online.testing import InMemoryOnlineStore
from featurestore.online.testing import market_catalog
from featurestore.service.datasets import OfflineAccess
from featurestore.service.testing import ServerThread
from tests.client_toolchains import GO_CLIENT
from tests.client_toolchains import compile_typescript
from tests.client_toolchains import go_command
from tests.client_toolchains import go_environment
from tests.integration.service.anomaly_data import BASE_TIME
from tests.integration.service.anomaly_data import AnomalyProducer
from tests.integration.service.anomaly_data import anomaly_record
from tests.integration.service.mlflow_models import RegisteredModels
from tests.integration.service.offline_data import T0
from tests.integration.service.offline_data import Offline

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]
BUILD = REPO / "build" / "clients"
NOW = datetime.now(UTC).replace(microsecond=0)
SYMBOLS = ["AAA", "BBB", "GHOST"]
FEATURES = ["bars_1m:close", "rolling_1m:vwap_5m", "bars_1m:volume"]
EXPORT = (T0 + pd.Timedelta(minutes=5), T0 + pd.Timedelta(minutes=50), timedelta(minutes=1))
MIN_SCORE = 0.3
FIRST_RUN = 4
TOKEN = "example-token"
"""The bearer token of the live server (every scope)."""


def _build_go() -> list[str]:
    binary = BUILD / "quickstart-go"
    subprocess.run(
        [go_command(), "build", "-mod=readonly", "-o", str(binary), "./examples/quickstart"],
        cwd=GO_CLIENT, check=True, timeout=240, env=go_environment(),
    )  # fmt: skip
    return [str(binary)]


def _build_typescript() -> list[str]:
    out = BUILD / "typescript"
    compile_typescript(out)
    return ["node", str(out / "examples" / "quickstart.js")]


@pytest.fixture(scope="module", params=["go", "typescript"])
def example(request: pytest.FixtureRequest) -> list[str]:
    """The command that runs the example of one client, built once per session."""
    BUILD.mkdir(parents=True, exist_ok=True)
    build: Callable[[], list[str]] = {"go": _build_go, "typescript": _build_typescript}[
        request.param
    ]
    return build()


@pytest.fixture
def topics(new_topic: Callable[..., str]) -> TopicSettings:
    return TopicSettings(
        anomalies=new_topic("anomalies"), predictions=new_topic("predictions", partitions=1)
    )


@pytest.fixture
def server(
    start_server: Callable[..., ServerThread],
    write_rows: Callable[[list[FeatureRow]], None],
    offline: Offline,
    topics: TopicSettings,
) -> ServerThread:
    write_rows(
        [
            FeatureRow("bars_1m", EntityKey.of(symbol="AAA"), NOW, {"close": 190.0}),
            FeatureRow("rolling_1m", EntityKey.of(symbol="AAA"), NOW, {"vwap_5m": 189.0}),
            # A view's row keeps the entity's key alive past the older row's TTL.
            FeatureRow("rolling_1m", EntityKey.of(symbol="BBB"), NOW, {"vwap_5m": 2.0}),
            FeatureRow(
                "bars_1m", EntityKey.of(symbol="BBB"), NOW - timedelta(hours=2), {"close": 1.0}
            ),
        ]
    )
    return start_server(
        topics=topics,
        offline=OfflineAccess(offline.settings, offline.definitions.project),
        auth_tokens=f"{TOKEN} *",
    )


def _anomaly(i: int) -> tuple[str, float]:
    """Every third anomaly is of a symbol not asked for, every fifth scores below the minimum."""
    return ("ZZZ" if i % 3 == 2 else SYMBOLS[i % 2]), (0.1 if i % 5 == 4 else 0.5 + i / 1000)


def _run(command: list[str], target: str, out: Path, model: str, *start: str) -> list[Any]:
    run = _example(command, target, out, model, f"--token={TOKEN}", *start)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return [json.loads(line) for line in run.stdout.splitlines()]


def _example(
    command: list[str], target: str, out: Path, model: str, *more: str
) -> subprocess.CompletedProcess[str]:
    start_s, end_s, step = EXPORT
    names = {
        "target": target, "symbols": ",".join(SYMBOLS), "features": ",".join(FEATURES),
        "model": model, "feature-service": "market_features_v1",
        "export-start": start_s.isoformat().replace("+00:00", "Z"),
        "export-end": end_s.isoformat().replace("+00:00", "Z"), "export-out": str(out),
        "min-score": str(MIN_SCORE), "max-anomalies": str(FIRST_RUN),
    }  # fmt: skip
    if command[0] == "node":
        names |= {"step-seconds": "60", "label-horizon-seconds": "300", "watch-seconds": "20"}
    else:
        names |= {"step": f"{step.seconds}s", "label-horizon": "5m", "watch": "20s"}
    args = [f"--{key}={value}" for key, value in names.items()]
    env = {k: v for k, v in os.environ.items() if k != "FEATURESTORE_TOKEN"}
    return subprocess.run(
        [*command, *args, *more], capture_output=True, text=True, timeout=120, cwd=REPO, env=env
    )


def test_example_is_refused_without_the_right_token(example: list[str], tmp_path: Path) -> None:
    """No token: refused at the first call; a reader's token: reads, then refused at Predict."""
    settings = load_settings(
        {
            "FEATURESTORE_GRPC__PORT": "0",
            "FEATURESTORE_SERVICE__AUTH_TOKENS": "reader features:read",
        }
    )
    catalog = market_catalog()
    store = InMemoryOnlineStore(catalog)
    server = ServerThread(settings, catalog, store_factory=lambda: store, probes={})
    try:
        anonymous = _example(example, server.target, tmp_path / "x.arrow", "m")
        reader = _example(example, server.target, tmp_path / "y.arrow", "m", "--token=reader")
    finally:
        server.stop(grace_s=0)
    assert anonymous.returncode != 0 and not anonymous.stdout
    assert "no bearer token" in anonymous.stderr and "'features:read'" in anonymous.stderr
    assert reader.returncode != 0
    assert [json.loads(line)["step"] for line in reader.stdout.splitlines()] == ["online"]
    assert "does not grant scope 'predict'" in reader.stderr, reader.stderr[-2000:]


def _by_step(lines: list[Any], step: str) -> list[Any]:
    return [line for line in lines if line["step"] == step]


def test_example_against_the_live_server(
    example: list[str],
    server: ServerThread,
    models: RegisteredModels,
    stack: Settings,
    topics: TopicSettings,
    tmp_path: Path,
) -> None:
    producer = AnomalyProducer(stack, topics.anomalies)
    for i in range(40):
        producer.send(anomaly_record(i, *_anomaly(i)))
    producer.close()
    wanted = sorted(
        f"a{i:05d}" for i in range(40) if _anomaly(i)[0] in SYMBOLS and _anomaly(i)[1] >= MIN_SCORE
    )

    first = _run(example, server.target, tmp_path / "1.arrow", models.name,
                 f"--anomaly-start={BASE_TIME.isoformat().replace('+00:00', 'Z')}")  # fmt: skip

    # Online features: every status, with the value and event time where there is one.
    (online,) = _by_step(first, "online")
    assert online["names"] == FEATURES
    aaa, bbb, ghost = online["rows"]
    assert aaa["bars_1m:close"]["value"] == 190.0
    assert aaa["bars_1m:close"]["status"] == "present"
    assert _utc(aaa["bars_1m:close"]["event_time"]) == NOW
    assert aaa["bars_1m:volume"]["status"] == "null_value"
    assert bbb["bars_1m:close"]["value"] == 1.0
    assert bbb["bars_1m:close"]["status"] == "outside_max_age"
    assert _utc(bbb["bars_1m:close"]["event_time"]) == NOW - timedelta(hours=2)
    assert {ghost[name]["status"] for name in FEATURES} == {"not_found"}
    assert ghost["bars_1m:close"]["value"] is None

    # Predict: the champion (version 1), only PRESENT values reach the model.
    (predict,) = _by_step(first, "predict")
    assert predict["model_version"] == "1"
    nan = math.nan
    expected = models.expected_v1([[190.0, 189.0, nan], [nan, 2.0, nan], [nan, nan, nan]])
    np.testing.assert_allclose(predict["scores"], expected, rtol=1e-9)
    assert predict["statuses"][0]["bars_1m:volume"] == "null_value"
    assert predict["statuses"][1]["bars_1m:close"] == "outside_max_age"

    # The export: the same Arrow table as the Python SDK's for the same request.
    (export,) = _by_step(first, "export")
    with pa.ipc.open_stream((tmp_path / "1.arrow").read_bytes()) as reader:
        table = reader.read_all()
    assert export["rows"] == table.num_rows == len(SYMBOLS) * 45
    start_s, end_s, step = EXPORT
    with FeatureStoreClient(server.target, timeout_s=120, token=TOKEN) as client:
        oracle = client.export_training_dataset(
            feature_service="market_features_v1", symbols=SYMBOLS, step=step,
            start_time=start_s.to_pydatetime(), end_time=end_s.to_pydatetime(),
            label_horizon=timedelta(minutes=5),
        )  # fmt: skip
    assert table.sort_by([("symbol", "ascending"), ("event_timestamp", "ascending")]).equals(
        oracle.sort_by([("symbol", "ascending"), ("event_timestamp", "ascending")])
    )
    assert table.column("close").null_count < table.num_rows  # AAA and BBB have bars

    # Anomalies from BASE_TIME, then resumed by the token the first run ended with.
    received = [line["id"] for line in _by_step(first, "anomaly")]
    assert len(received) == FIRST_RUN
    (summary,) = _by_step(first, "anomalies")
    assert summary["resume_token"] == _by_step(first, "anomaly")[-1]["token"]
    rest = len(wanted) - FIRST_RUN
    resume = [f"--resume-token={summary['resume_token']}", f"--max-anomalies={rest}"]
    second = _run(example, server.target, tmp_path / "2.arrow", models.name, *resume)
    received += [line["id"] for line in _by_step(second, "anomaly")]
    assert len(received) == len(set(received)), "an anomaly was delivered twice"
    assert sorted(received) == wanted, "an anomaly was missed"


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)
