from datetime import UTC
from datetime import datetime
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from featurestore.definitions import market_definitions
from featurestore.errors import ValidationError
from models.demo.market import Injection
from models.demo.market import inject
from models.drift import population_stability
from models.drift import reference_histograms
from models.scoring import anomaly_id
from processors.features.frame import compute_frame


def test_psi_is_near_zero_on_the_same_distribution_and_flags_a_shift():
    rng = np.random.default_rng(0)
    train = pd.DataFrame({"a": rng.normal(0, 1, 5000), "b": rng.exponential(1, 5000)})
    reference = reference_histograms(train)
    same = pd.DataFrame({"a": rng.normal(0, 1, 2000), "b": rng.exponential(1, 2000)})
    assert all(d.psi < 0.05 and not d.drifted for d in population_stability(reference, same))
    shifted = same.assign(a=same["a"] + 1.0, b=np.where(rng.random(2000) < 0.3, np.nan, same["b"]))
    drift = {d.feature: d for d in population_stability(reference, shifted)}
    assert drift["a"].drifted and drift["a"].psi > 0.2
    assert not drift["b"].drifted  # the values present keep their distribution
    assert drift["b"].missing_reference == 0.0
    assert drift["b"].missing_live == pytest.approx(0.3, abs=0.05)
    with pytest.raises(ValidationError, match="lack"):
        population_stability(reference, same.drop(columns="b"))


def test_psi_is_refused_on_too_few_rows_to_tell_drift_from_noise():
    rng = np.random.default_rng(1)
    reference = reference_histograms(pd.DataFrame({"a": rng.normal(0, 1, 5000)}))
    live = pd.DataFrame({"a": rng.normal(0, 1, 100)})
    with pytest.raises(ValidationError, match=r"99 live rows .* 100 needed for 10 bins"):
        population_stability(reference, live.head(99))
    (drift,) = population_stability(reference, live)
    assert drift.live_rows == 100


def test_anomaly_ids_are_deterministic_and_differ_by_version():
    t = datetime(2024, 1, 2, 15, 0, tzinfo=UTC)
    assert anomaly_id("m", "1", "IBM", t) == anomaly_id("m", "1", "IBM", t)
    assert anomaly_id("m", "1", "IBM", t) != anomaly_id("m", "2", "IBM", t)
    assert anomaly_id("m", "1", "IBM", t) != anomaly_id("m", "1", "IBM", t + timedelta(minutes=1))


def test_injections_change_only_their_minute():
    t0 = pd.Timestamp("2024-01-02 14:30", tz="UTC")
    trades = pd.DataFrame(
        {"symbol": "AAA", "event_time": [t0 + pd.Timedelta(seconds=20 * i) for i in range(12)],
         "price": 50.0, "size": 100}
    )  # fmt: skip
    spike = Injection("AAA", (t0 + pd.Timedelta(minutes=2)).to_pydatetime(), "price_spike", 0.1, 5)
    burst = Injection(
        "AAA",
        (t0 + pd.Timedelta(minutes=3)).to_pydatetime(),
        "volume_burst",
        extra_trades=4,
        burst_size=10_000,
    )
    frames = compute_frame(market_definitions(), inject(trades, [spike, burst]))
    out = frames["bars_1m"].set_index("event_timestamp")
    complete = pd.Timedelta(microseconds=1)  # a minute's complete bar: its last microsecond
    assert out.loc[spike.bar_end - complete, "close"] == pytest.approx(55.0)
    assert out.loc[spike.bar_end - complete, "trade_count"] == 3 + 5
    assert out.loc[burst.bar_end - complete, "volume"] == 300 + 40_000
    assert out.loc[burst.bar_end - complete, "close"] == 50.0
    assert out.loc[t0 + pd.Timedelta(minutes=2) - complete, "close"] == 50.0


def test_model_inputs_rename_the_row_views_bare_names_and_name_a_column_they_cannot_join():
    from models.scoring import model_inputs

    rows = pd.DataFrame(
        {
            "symbol": ["A"],
            "event_timestamp": [datetime(2024, 1, 2, tzinfo=UTC)],
            "vwap_5m": [10.0],
            "close": [11.0],
        }
    )
    frame = model_inputs(rows, ("rolling_1m__vwap_5m",), None)
    assert frame.columns.tolist() == ["symbol", "event_timestamp", "rolling_1m__vwap_5m"]
    assert frame["rolling_1m__vwap_5m"].tolist() == [10.0]

    class NoJoins:  # model_inputs must refuse before it asks the store anything
        def to_pandas(self, *_: object) -> pd.DataFrame:
            raise AssertionError("asked the store")

    with pytest.raises(ValidationError, match=r"^model input 'close' is not a feature named"):
        model_inputs(rows.drop(columns="close"), ("rolling_1m__vwap_5m", "close"), NoJoins())  # type: ignore[arg-type]


def test_the_demo_market_has_venues_for_views_that_read_them():
    """A user's trades source may read the exchange (``when(exchange == 'D', size)``): the demo
    trades the models start from carry it, injected trades their symbol's last venue."""
    import json
    from dataclasses import replace

    from models.demo import demo_market

    demo = demo_market(seed=3, symbols=3, minutes=20, rate=5.0, anomalies=2)
    assert (
        set(demo.trades["exchange"]) <= set("QPZKNDJYBX") and demo.trades["exchange"].notna().all()
    )
    defs = market_definitions()
    views = []
    for view in defs.views:
        if view.stream is not None and view.stream.upstream is None:
            source = view.stream.source
            schema = json.loads(source.avro_schema or "{}")
            schema["fields"].append({"name": "exchange", "type": "string"})
            source = replace(
                source,
                avro_schema=json.dumps(schema),
                columns={**source.columns, "d_size": "when(exchange == 'D', size)"},
            )
            view = replace(view, stream=replace(view.stream, source=source))
        views.append(view)
    frames = compute_frame(replace(defs, views=tuple(views)), demo.trades)
    assert len(frames["bars_1m"]) > 0
