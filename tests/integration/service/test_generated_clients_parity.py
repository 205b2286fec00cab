"""The Go and TypeScript clients' Predict inline features, StreamPredictions and error classes live.

A program per client (``client_programs/parity.go``, ``parity.mjs``) runs against a server over
the stack's Redis, MLflow and Kafka: Predict with inline features (the scores must equal the
Python SDK's for the same request and the model's own), a value that is not a number (refused
before any call, named), an unknown model (its not-found error), StreamPredictions from a time
(the two predictions it just made, as the Python SDK streams them, times to the microsecond in
TypeScript) and a token past the partition's end (the out-of-range error).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
from collections.abc import Callable
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from featurestore_client import FeatureStoreClient

from featurestore.config import TopicSettings
from featurestore.online import EntityKey
from featurestore.online import FeatureRow
from featurestore.service.stream_position import StreamPosition
from featurestore.service.testing import ServerThread
from tests.client_toolchains import GO_CLIENT
from tests.client_toolchains import compile_typescript
from tests.client_toolchains import go_command
from tests.client_toolchains import go_environment
from tests.integration.service.mlflow_models import RegisteredModels

pytestmark = pytest.mark.integration

PROGRAMS = Path(__file__).parent / "client_programs"
TOKEN = "parity-token"
SYMBOLS = ["AAA", "BBB"]
NOW = datetime.now(UTC).replace(microsecond=0)
INLINE = {"bars_1m:close": [150.0, None]}
"""What each program sends inline: AAA's close given, BBB's given as missing."""


def _build_go(out: Path) -> list[str]:
    """parity.go in a module of its own whose client is clients/go, as a user's module would be."""
    module = out / "go"
    module.mkdir()
    shutil.copy(PROGRAMS / "parity.go", module / "main.go")
    shutil.copy(GO_CLIENT / "go.sum", module / "go.sum")
    (module / "go.mod").write_text(
        "module liveparity\n\ngo 1.26.0\n\n"
        "require github.com/featurestore/featurestore/clients/go v0.0.0\n\n"
        f"replace github.com/featurestore/featurestore/clients/go => {GO_CLIENT}\n"
    )
    env = {**go_environment(), "GOFLAGS": "-mod=mod", "GOPROXY": "off"}
    binary = module / "parity"
    subprocess.run(
        [go_command(), "build", "-o", str(binary), "."],
        cwd=module, check=True, timeout=240, env=env,
    )  # fmt: skip
    return [str(binary)]


def _build_typescript(out: Path) -> list[str]:
    compiled = out / "typescript"
    compile_typescript(compiled)
    return ["node", str(PROGRAMS / "parity.mjs"), str(compiled)]


@pytest.fixture(scope="module", params=["go", "typescript"])
def program(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    out = tmp_path_factory.mktemp(f"parity-{request.param}")
    build: Callable[[Path], list[str]] = {"go": _build_go, "typescript": _build_typescript}[
        request.param
    ]
    return build(out)


@pytest.fixture
def topic(new_topic: Callable[..., str]) -> str:
    return new_topic("predictions", partitions=1)


@pytest.fixture
def server(
    start_server: Callable[..., ServerThread],
    write_rows: Callable[[list[FeatureRow]], None],
    topic: str,
) -> ServerThread:
    write_rows(
        [
            FeatureRow("bars_1m", EntityKey.of(symbol="AAA"), NOW, {"close": 190.0}),
            FeatureRow("rolling_1m", EntityKey.of(symbol="AAA"), NOW, {"vwap_5m": 189.0}),
            FeatureRow("bars_1m", EntityKey.of(symbol="BBB"), NOW, {"close": 2.0}),
            FeatureRow("rolling_1m", EntityKey.of(symbol="BBB"), NOW, {"vwap_5m": 2.5}),
        ]
    )
    return start_server(topics=TopicSettings(predictions=topic), auth_tokens=f"{TOKEN} *")


def _steps(run: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return {line["step"]: line for line in map(json.loads, run.stdout.splitlines())}


def _micros(when: datetime) -> int:
    return (when - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


def test_inline_features_prediction_stream_and_errors_live(
    program: list[str], server: ServerThread, models: RegisteredModels, topic: str
) -> None:
    since = datetime.now(UTC) - timedelta(seconds=1)
    expired = StreamPosition(topic, {0: 1000}).token()  # past the partition's end
    args = {
        "target": server.target, "token": TOKEN, "model": models.name,
        "symbols": ",".join(SYMBOLS), "since": since.isoformat().replace("+00:00", "Z"),
        "count": "2", "expired-token": expired,
    }  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "FEATURESTORE_TOKEN"}
    run = subprocess.run(
        [*program, *(f"--{k}={v}" for k, v in args.items())],
        capture_output=True, text=True, timeout=150, env=env,
    )  # fmt: skip
    steps = _steps(run)

    # Inline features replace the online values: AAA's close is 150, BBB's is missing (NaN).
    predict = steps["predict"]
    nan = math.nan
    expected = models.expected_v1([[150.0, 189.0, nan], [nan, 2.5, nan]])
    np.testing.assert_allclose(predict["scores"], expected, rtol=1e-9)
    with FeatureStoreClient(server.target, token=TOKEN, timeout_s=60) as client:
        oracle = client.predict(
            models.name, entities={"symbol": SYMBOLS}, inline_features=INLINE
        ).scores
        np.testing.assert_allclose(predict["scores"], oracle, rtol=1e-12)

        # The Python SDK streams the same predictions, at the same times.
        with client.stream_predictions(models.name, start_time=since) as stream:
            logged = [p for _, p in zip(range(2), stream, strict=False)]
    assert {p.prediction_id for p in logged} == set(predict["ids"])

    bad = steps["bad_inline"]
    assert "not a number" in bad["error"], bad
    assert "bars_1m:close" in bad["error"] and "[0]" in bad["error"], bad
    assert steps["unknown_model"]["kind"] in {"NotFound", "NotFoundError"}, steps["unknown_model"]

    streamed = steps["stream"]["predictions"]
    assert [p["id"] for p in streamed] == [p.prediction_id for p in logged]
    assert [p["entity"]["symbol"] for p in streamed] == SYMBOLS
    np.testing.assert_allclose([p["score"] for p in streamed], predict["scores"], rtol=1e-12)
    assert [p["features"] for p in streamed] == [dict(p.features) for p in logged]
    assert [p["version"] for p in streamed] == ["1", "1"]
    for mine, python in zip(streamed, logged, strict=True):
        assert python.response_time is not None
        if "response_time_micros" in mine:  # TypeScript: the exact time beside the Date
            assert int(mine["response_time_micros"]) == _micros(python.response_time)
        else:  # Go: a time.Time keeps nanoseconds
            assert datetime.fromisoformat(mine["response_time"]) == python.response_time

    gone = steps["expired_token"]
    assert gone["kind"] in {"OutOfRange", "OutOfRangeError"}, gone
    assert "resume_token" in gone["error"], gone
