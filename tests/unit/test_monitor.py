"""The monitor's passes: lag of the stack's processors, each watched model on its own."""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import replace
from datetime import UTC
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider

from featurestore.config import load_settings
from featurestore.definitions import PROJECT
from featurestore.definitions import market_definitions
from featurestore.definitions.snapshot import encode_definitions
from featurestore.definitions.snapshot import snapshot_file
from featurestore.errors import NotFoundError
from featurestore.errors import ValidationError
from featurestore.monitor import Monitor
from models.drift import FeatureDrift
from processors.metrics import ConsumerLag


def test_a_model_that_cannot_be_measured_does_not_stop_the_others(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import featurestore.definitions.snapshot as snapshot
    import models.monitoring as monitoring

    settings = load_settings(
        {
            "FEATURESTORE_DATA_DIR": str(tmp_path),
            "FEATURESTORE_METRICS__DRIFT_MODELS": "young,gone,measured",
        }
    )
    monkeypatch.setattr(snapshot, "cached_definitions", lambda *_: market_definitions())

    champion = {"measured": "3"}

    def measure(store: Any, dsn: str, registry: Any, model: str, **_: Any) -> Any:
        if model == "young":
            raise ValidationError("no rows with full windows yet", field="window")
        if model == "gone":
            raise NotFoundError("model 'gone' has no 'champion' version")
        psi = 0.45 if champion[model] == "3" else 0.05
        drift = FeatureDrift("rolling_1m__volume_ratio", psi, 120, False)
        now = datetime.now(UTC)
        ref = SimpleNamespace(version=champion[model])
        return SimpleNamespace(ref=ref, features=[drift], start=now)

    monkeypatch.setattr(monitoring, "measure_drift", measure)
    monitor = Monitor(settings, MeterProvider())
    with caplog.at_level(logging.INFO, logger="featurestore.monitor"):
        monitor.measure_drift()
    assert monitor.psi == {("measured", "3", "rolling_1m__volume_ratio"): 0.45}
    levels = {r.getMessage().split(":")[0]: r.levelno for r in caplog.records}
    assert levels == {"drift of young": logging.INFO, "drift of gone": logging.WARNING}
    # Version 4 promoted: version 3's drift is no longer exported (it would keep DriftHigh on).
    champion["measured"] = "4"
    monitor.measure_drift()
    assert monitor.psi == {("measured", "4", "rolling_1m__volume_ratio"): 0.05}


def test_column_copies_are_rebuilt_beside_a_slow_measurement(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import featurestore.definitions.snapshot as snapshot
    import featurestore.offline.column_copy as column_copy

    settings = load_settings({"FEATURESTORE_DATA_DIR": str(tmp_path)})
    monkeypatch.setattr(snapshot, "cached_definitions", lambda *_: market_definitions())
    refreshed = threading.Event()
    calls: list[tuple[Path, int]] = []

    def refresh(dsn: str, definitions: Any, root: Path, **options: Any) -> list[Any]:
        calls.append((root, options["max_rows"]))
        refreshed.set()
        return []

    monkeypatch.setattr(column_copy, "refresh_copies", refresh)
    until = datetime(2026, 12, 5, 6, tzinfo=UTC)
    exact = column_copy.CopyMeta(
        "bars_1m", "bars_1m", "symbol", ["close"], until.isoformat(), "", [], "", 1234
    )
    monkeypatch.setattr(column_copy, "exact_copies", lambda *_: [exact])
    stop = threading.Event()
    monitor = Monitor(settings, MeterProvider())
    release = threading.Event()
    monkeypatch.setattr(monitor, "measure_lag", lambda: release.wait(120))  # a stuck measurement
    monkeypatch.setattr(monitor, "measure_drift", lambda: None)
    monkeypatch.setattr(monitor, "apply_retention", lambda: None)
    running = threading.Thread(target=monitor.run, args=(stop,))
    running.start()
    try:
        assert refreshed.wait(60), "the copies waited for the lag measurement"
    finally:
        stop.set()
        release.set()
        running.join(10)
    assert calls == [(tmp_path.resolve() / "offline-columns", 20_000_000)]
    assert monitor.copy_until == {("bars_1m",): until.timestamp()}
    assert monitor.copy_rows == {("bars_1m",): 1234}


def test_lag_is_measured_for_every_processor_of_the_stack_a_topic_applied_since_included(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import processors.metrics as processor_metrics

    asked: list[tuple[str, ...]] = []

    def consumer_lag(settings: Any, processors: Any) -> list[ConsumerLag]:
        asked.append(tuple(processors))
        return [ConsumerLag(p, "t", 7, 1.5) for p in processors]

    monkeypatch.setattr(processor_metrics, "consumer_lag", consumer_lag)
    settings = load_settings({"FEATURESTORE_DATA_DIR": str(tmp_path)})
    monitor = Monitor(settings, MeterProvider())
    monitor.measure_lag()
    assert asked.pop() == ("features", "features-quotes", "features-metrics")
    # A view of a topic of the user's own is applied: its processor's lag is measured next time.
    market = market_definitions()
    orders = market_definitions(source_topic="orders")
    kept = replace(market, views=(*market.views, *orders.views[:1]))
    path = snapshot_file(settings, PROJECT)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"definitions": encode_definitions(kept)}))
    monitor.measure_lag()
    assert asked.pop() == ("features", "features-quotes", "features-metrics", "features-orders")
    assert monitor.lag_records[("features-orders", "t")] == 7
    # Named ones only, or none.
    # Its views removed: its last lag stops being exported (it would keep the alert on).
    path.unlink()
    monitor.measure_lag()
    assert asked.pop() == ("features", "features-quotes", "features-metrics")
    assert ("features-orders", "t") not in monitor.lag_records
    assert ("features-orders", "t") not in monitor.lag_seconds
    for named, expected in (("features-quotes", ("features-quotes",)), ("", ())):
        chosen = load_settings(
            {"FEATURESTORE_DATA_DIR": str(tmp_path), "FEATURESTORE_METRICS__LAG_PROCESSORS": named}
        )
        Monitor(chosen, MeterProvider()).measure_lag()
        assert asked.pop() == expected


def test_every_champion_is_watched_and_one_that_cannot_be_is_passed_over_once(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import featurestore.definitions.snapshot as snapshot
    import models.monitoring as monitoring
    from models.registry import ModelRegistry

    settings = load_settings({"FEATURESTORE_DATA_DIR": str(tmp_path)})
    assert settings.metrics.drift_models is None  # unset: every champion
    monkeypatch.setattr(snapshot, "cached_definitions", lambda *_: market_definitions())
    champions = ["broken", "mine", "noref"]
    monkeypatch.setattr(ModelRegistry, "with_alias", lambda self: list(champions))

    def measure(store: Any, dsn: str, registry: Any, model: str, **_: Any) -> Any:
        if model == "noref":
            raise NotFoundError("models:/noref/1 has no drift reference")
        if model == "broken":
            raise KeyError("bins")  # a fault of this model's: the others still measured
        drift = FeatureDrift("flow_1m__trades_5m", 0.3, 120, True)
        return SimpleNamespace(ref=SimpleNamespace(version="1"), features=[drift])

    monkeypatch.setattr(monitoring, "measure_drift", measure)
    monitor = Monitor(settings, MeterProvider())
    with caplog.at_level(logging.INFO, logger="featurestore.monitor"):
        monitor.measure_drift()
        monitor.measure_drift()
    assert monitor.psi == {("mine", "1", "flow_1m__trades_5m"): 0.3}
    said = [(r.levelno, r.getMessage()) for r in caplog.records]
    noref = [s for s in said if s[1].startswith("drift of noref")]
    assert noref == [(logging.INFO, "drift of noref: not watched: models:/noref/1 has no drift"
                      " reference")]  # fmt: skip
    broken = [s for s in said if s[1].startswith("drift of broken")]
    assert len(broken) == 2 and all(level == logging.WARNING for level, _ in broken)
    # Its champion removed: its PSI is no longer exported (DriftHigh would stay on).
    champions.remove("mine")
    monitor.measure_drift()
    assert monitor.psi == {}
