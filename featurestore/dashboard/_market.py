"""The market panel: 1-minute candles with volume, anomalies on them, the latest features.

Read through the store's own interfaces only: the symbols trading now from the offline store
(:meth:`PostgresOfflineStore.active_entities`), candle history from a point-in-time export of
``bars_1m`` through the gRPC API (one grid row per symbol and minute, at the minute's last
millisecond, so each row is that minute's bar as of its last trade), the latest values from
GetOnlineFeatures, and anomalies from StreamAnomalies (one stream, kept open on a thread, started
``history`` back and resumed by its token after a disconnect, however long).
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import TYPE_CHECKING
from typing import Any

from featurestore_client import Anomaly
from featurestore_client import FeatureStoreClient
from featurestore_client import FeatureStoreClientError
from featurestore_client import RetryPolicy

from featurestore.offline import PostgresOfflineStore

if TYPE_CHECKING:
    from featurestore_client import AnomalyStream

__all__ = ["CANDLE_FEATURES", "LATEST_FEATURES", "AnomalyFeed", "MarketPanel"]

logger = logging.getLogger(__name__)

CANDLE_FEATURES = ("open", "high", "low", "close", "volume")
LATEST_FEATURES = (
    "bars_1m:close",
    "bars_1m:volume",
    "bars_1m:trade_count",
    "bars_1m:vwap",
    "rolling_1m:vwap_5m",
    "rolling_1m:realized_vol_5m",
    "rolling_1m:price_momentum_1m",
    "rolling_1m:volume_ratio",
)
_MINUTE = timedelta(minutes=1)
_KEEP = 5000
"""The most anomalies a feed holds (the oldest go first)."""
_RECONNECT = RetryPolicy(initial_backoff_s=0.5, max_backoff_s=15.0)
_LAST_MS = timedelta(minutes=1) - timedelta(milliseconds=1)


class AnomalyFeed:
    """Anomalies from StreamAnomalies, kept in memory on a daemon thread, for the dashboard's life.

    The SDK's stream reconnects by itself a few times; a dashboard outlives longer outages (a gRPC
    server that is not serving yet when the dashboard starts, or one restarted), so when the
    stream ends on an error the feed opens it again after a pause, from the last resume token it
    received: no anomaly is missed or repeated. :attr:`error` says why while it is down.
    Anything but the client's own errors is a fault no reconnection mends: the feed stops and
    :attr:`error` keeps saying why.
    """

    def __init__(
        self, client: FeatureStoreClient, history: timedelta, reconnect: RetryPolicy = _RECONNECT
    ) -> None:
        """Stream the anomalies of the last ``history`` and on; pause as ``reconnect`` says.

        Only the policy's backoff counts: the feed reopens the stream until it is closed.
        """
        self._client = client
        self._start = datetime.now(UTC) - history
        self._reconnect = reconnect
        self._anomalies: deque[Anomaly] = deque(maxlen=_KEEP)
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._stream: AnomalyStream | None = None
        self._failure: str | None = None
        self._ended: str | None = None
        self._thread = threading.Thread(target=self._run, name="anomaly-feed", daemon=True)
        self._thread.start()

    @property
    def error(self) -> str | None:
        """Why the stream is down, while it is (the panel shows it); None on a live stream."""
        if self._ended is not None:
            return self._ended
        stream = self._stream
        if self._failure is None or (stream is not None and stream.connected):
            return None
        return self._failure

    def _run(self) -> None:
        try:
            self._follow()
        except Exception as exc:  # a fault of the feed's own (a bad message, say), not an outage
            self._ended = f"anomaly stream ended: {exc}"
            logger.exception("%s", self._ended)

    def _follow(self) -> None:
        token: str | None = None
        failures = 0
        while True:
            with self._lock:
                if self._closed.is_set():
                    return
                stream = self._client.stream_anomalies(
                    start_time=None if token else self._start, resume_token=token
                )
                self._stream = stream
            try:
                for anomaly in stream:
                    failures = 0
                    with self._lock:
                        self._anomalies.append(anomaly)
                if self._closed.is_set():
                    return
                self._failure = "anomaly stream ended by the server, reconnecting"
            except FeatureStoreClientError as exc:
                self._failure = f"anomaly stream interrupted, reconnecting: {exc}"
                logger.warning("%s", self._failure)
            token = stream.resume_token or token
            if self._closed.wait(self._reconnect.backoff_s(failures)):
                return
            failures += 1

    def since(self, start: datetime) -> list[Anomaly]:
        """The anomalies with an event time at or after ``start``."""
        with self._lock:
            return [a for a in self._anomalies if a.event_time >= start]

    def close(self) -> None:
        """Cancel the stream; the feed opens no other."""
        with self._lock:
            self._closed.set()
            if self._stream is not None:
                self._stream.close()


def _floor_minute(when: datetime) -> datetime:
    return when.replace(second=0, microsecond=0)


class MarketPanel:
    """Gathers the market panel's data."""

    def __init__(
        self,
        client: FeatureStoreClient,
        offline: PostgresOfflineStore,
        *,
        history: timedelta,
        max_symbols: int,
    ) -> None:
        self._client = client
        self._offline = offline
        self._history = history
        self._max_symbols = max_symbols
        self.anomalies = AnomalyFeed(client, history)

    def symbols(self, now: datetime) -> list[str]:
        """The most active symbols of the history window, by name."""
        found = self._offline.active_entities("bars_1m", now - self._history, self._max_symbols)
        return sorted(found)

    def gather(self, now: datetime) -> dict[str, Any]:
        """The symbols, their candles and anomalies, and a table of their latest features."""
        symbols = self.symbols(now)
        if not symbols:
            return {"symbols": [], "candles": {}, "anomalies": {}, "latest": []}
        start = _floor_minute(now - self._history)
        return {
            "symbols": symbols,
            "candles": self._candles(symbols, start, now),
            "anomalies": self._anomalies(set(symbols), start),
            "latest_features": list(LATEST_FEATURES),
            "latest": self._client.get_online_features(
                list(LATEST_FEATURES), entities={"symbol": symbols}
            ).to_dicts(),
            "anomaly_stream_error": self.anomalies.error,
        }

    def _candles(
        self, symbols: list[str], start: datetime, now: datetime
    ) -> dict[str, list[dict[str, Any]]]:
        table = self._client.export_training_dataset(
            [f"bars_1m:{f}" for f in CANDLE_FEATURES],
            symbols=symbols,
            start_time=start + _LAST_MS,
            end_time=_floor_minute(now) + _MINUTE,
            step=_MINUTE,
        )
        candles: dict[str, list[dict[str, Any]]] = {s: [] for s in symbols}
        for row in table.to_pylist():
            if row["close"] is None:
                continue
            minute = _floor_minute(row["event_timestamp"])
            bars = candles[row["symbol"]]
            if bars and all(bars[-1][f] == row[f] for f in CANDLE_FEATURES):
                continue  # no trade in this minute: the export repeats the previous bar
            bars.append({"t": minute.isoformat(), **{f: row[f] for f in CANDLE_FEATURES}})
        return candles

    def _anomalies(self, symbols: set[str], start: datetime) -> dict[str, list[dict[str, Any]]]:
        by_symbol: dict[str, list[dict[str, Any]]] = {}
        for a in self.anomalies.since(start):
            if a.symbol in symbols:
                by_symbol.setdefault(a.symbol, []).append(
                    {"t": a.event_time.isoformat(), "score": a.score, "model": a.model_name}
                )
        return by_symbol

    def close(self) -> None:
        """Stop the anomaly stream."""
        self.anomalies.close()
