from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any
from typing import cast

from featurestore_client import Anomaly
from featurestore_client import FeatureStoreClient
from featurestore_client import RetryPolicy
from starlette.testclient import TestClient

from featurestore.config import load_settings
from featurestore.dashboard import Dashboard
from featurestore.dashboard._app import _page
from featurestore.dashboard._app import create_app
from featurestore.dashboard._market import AnomalyFeed
from featurestore.dashboard._models import _Prediction
from featurestore.dashboard._models import shown_predictions


def test_a_failing_panel_shows_its_error_and_the_others_still_fill() -> None:
    def broken(_: dict[str, Any]) -> dict[str, Any]:
        raise ConnectionError("prometheus is away")

    board = Dashboard(
        load_settings({}),
        {"market": lambda _: {"symbols": ["A"]}, "pipeline": broken,
         "models": lambda s: {"seen": s["market"]["symbols"]}},
    )  # fmt: skip
    snapshot = board.gather_once()
    assert snapshot["market"]["symbols"] == ["A"]
    assert snapshot["pipeline"]["error"] == "ConnectionError: prometheus is away"
    assert snapshot["models"]["seen"] == ["A"]  # later panels see earlier ones
    assert snapshot["generated_at"]


def test_numbers_json_lacks_reach_the_page_as_null() -> None:
    # Predict scores an LSTM NaN before its entity has history: the snapshot must still render.
    nan, inf = float("nan"), float("inf")
    board = Dashboard(
        load_settings({}),
        {"models": lambda _: {"predictions": [{"score": nan, "close": 1.5}], "psi": (inf, -inf)}},
    )
    board.snapshot = board.gather_once()
    with TestClient(create_app(board)) as http:
        answer = http.get("/api/snapshot")  # Starlette renders JSON strictly (no NaN)
    assert answer.status_code == 200
    models = answer.json()["models"]
    assert models["predictions"] == [{"score": None, "close": 1.5}]
    assert models["psi"] == [None, None]


def test_the_page_polls_at_the_configured_refresh() -> None:
    page = _page(2.5)
    assert "const REFRESH_MS = 2500;" in page
    assert "/*SCRIPT*/" not in page and "/*STYLE*/" not in page
    assert 'fetch("/api/snapshot"' in page
    for panel in ("market", "models", "pipeline"):
        assert f'<section id="{panel}"' in page


def test_dashboard_settings_from_env() -> None:
    settings = load_settings(
        {"FEATURESTORE_DASHBOARD__PORT": "18111", "FEATURESTORE_DASHBOARD__MODELS": "a, b"}
    ).dashboard
    assert settings.url == "http://127.0.0.1:18111/"
    assert settings.models == ("a", "b")
    assert load_settings({}).dashboard.refresh_s <= 5


class _BrokenStream:
    """A stream whose second message is one the feed cannot take (a fault, not an outage)."""

    connected = True
    resume_token = "t1"

    def __init__(self, first: Anomaly) -> None:
        self._first = first

    def __iter__(self) -> Iterator[Anomaly]:
        yield self._first
        raise ValueError("timestamp out of range")

    def close(self) -> None:
        pass


class _OneStreamClient:
    def __init__(self, stream: _BrokenStream) -> None:
        self.stream = stream
        self.opened = 0

    def stream_anomalies(self, **_: Any) -> _BrokenStream:
        self.opened += 1
        return self.stream


def test_a_fault_in_the_anomaly_feed_stops_it_and_its_error_stays_shown() -> None:
    now = datetime.now(UTC)
    first = Anomaly("a1", "AAPL", now, 4.2, "m", "1", now, "t1")
    client = _OneStreamClient(_BrokenStream(first))
    feed = AnomalyFeed(cast(FeatureStoreClient, client), timedelta(minutes=5),
                       RetryPolicy(initial_backoff_s=0.01, max_backoff_s=0.01))  # fmt: skip
    feed._thread.join(5)
    assert not feed._thread.is_alive()
    # Shown although the stream had connected; not reopened (a retry would fail the same way).
    assert feed.error == "anomaly stream ended: timestamp out of range"
    assert client.opened == 1
    assert feed.since(now - timedelta(seconds=1)) == [first]
    feed.close()


def test_the_predictions_shown_are_the_newest_round_then_those_settled() -> None:
    """Rounds come every horizon / 6: newest first alone, a short table would all be pending."""
    rounds = [
        _Prediction(float(at), "m", "1", symbol, 0.5, 100.0, outcome)
        for at, outcome in ((1, 0.01), (2, None), (3, 0.02), (4, None), (5, None))
        for symbol in ("A", "B")
    ]
    shown = shown_predictions(rounds)
    newest_first = [(5.0, "B"), (5.0, "A"), (3.0, "B"), (3.0, "A"), (1.0, "B"), (1.0, "A")]
    assert [(p.at, p.symbol) for p in shown] == newest_first
    assert shown_predictions([]) == []
