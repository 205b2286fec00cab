"""The chaos run: SIGKILL one component at a time under load, then check that nothing was lost.

On a stack of its own (:mod:`bench.own_stack`) with the synthetic market at ``rate`` trades/s,
a GetOnlineFeatures caller and a StreamAnomalies subscriber (the Python SDK, resuming by its
token) run all along. For each component in turn: SIGKILL (the whole process group: Spark's JVM,
PostgreSQL's backends, MLflow's workers go with it), then wait until it is healthy again (the
supervisor starts it; nobody else does anything), every service says SERVING, and the
processor has committed up to where the topic's end was at that moment: the recovery time.

Afterwards the feed stops, the processor catches up, and:

- ``bars_1m`` equals an independent recomputation from the log (pandas, from the decoded trades:
  a running bar of the calendar minute at every trade): rows missing, extra and different;
- the sum of the last bar of each minute's ``trade_count`` equals the trades in the log (lost),
  and no (symbol, time) is twice in a table (duplicated);
- every symbol's online row equals its latest offline row;
- every answer GetOnlineFeatures gave (symbol, event time, close) is a row of the offline table
  (never a wrong value), every failure was UNAVAILABLE (never UNKNOWN);
- the anomalies topic holds no id twice, and the subscriber received each of them exactly once.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from datetime import UTC
from datetime import datetime
from typing import Any

import grpc
import pandas as pd
import psutil
import psycopg
from confluent_kafka import Consumer
from confluent_kafka import TopicPartition

from bench.own_stack import OwnStack
from featurestore._proto.v1 import feature_service_pb2
from featurestore._proto.v1 import feature_service_pb2_grpc
from featurestore._proto.v1 import types_pb2
from featurestore.definitions import load_definitions
from featurestore.events import ConfluentSchemaStore
from featurestore.events import LoggedEvent
from featurestore.events import Trade
from featurestore.events import replay_topic
from featurestore.events import to_micros
from featurestore.kafka_connection import create_client
from featurestore.stack.base import Component
from featurestore.stack.restart import RestartRecord
from processors.state_table import stored_offsets

__all__ = ["COMPONENTS", "ChaosReport", "Kill", "run_chaos"]

logger = logging.getLogger(__name__)

COMPONENTS = (
    "kafka", "processors", "grpc", "schema-registry", "redis", "postgres", "mlflow", "scorer",
)  # fmt: skip
"""The components killed, in this order."""


@dataclass
class Kill:
    """One component's SIGKILL and what followed."""

    component: str
    alone_s: float | None = None
    """Kill -> the component itself healthy again (the supervisor's wait and its start-up)."""
    healthy_s: float | None = None
    """Kill -> the component and every service healthy (None: not within the limit)."""
    recovered_s: float | None = None
    """Kill -> healthy and the processor committed up to the topic's end of that moment."""
    lag_before: int | None = None
    """Records the processor was behind the topic's end just before the kill."""
    back_s: float | None = None
    """Kill -> healthy and the processor no further behind than before the kill (plus 5 s of
    feed): where it was. A processor slower than the feed never drains the topic's end, but
    it does get back to where it was."""
    requests: int = 0
    failed: dict[str, int] = field(default_factory=dict)
    """GetOnlineFeatures failures between the kill and the recovery, by status code."""
    restarts: int = 0
    """Times the supervisor started it again (the record's count after the kill)."""
    collateral: dict[str, str] = field(default_factory=dict)
    """Other supervised processes that died between this kill and its recovery, each with
    the supervisor's account of its last exit: a service that should have ridden through."""


@dataclass
class ChaosReport:
    """What a chaos run measured and found."""

    rate: float
    seconds: float
    recover_limit_s: float = 0.0
    trades: int = 0
    startup: dict[str, float] = field(default_factory=dict)
    """Seconds each component took to start alone and be healthy, before the load began."""
    kills: list[Kill] = field(default_factory=list)
    bars_rows: int = 0
    bars_missing: int = 0
    bars_extra: int = 0
    boundary_rows: int = 0
    """Rows at ``b - 1 us`` and ``b`` of a closed minute boundary b, which a running view also
    has (``processors/features/engine.py``): the minute's last bar, and an empty bar."""
    boundary_different: int = 0
    bars_different: int = 0
    lost: int = 0
    duplicated: int = 0
    online_checked: int = 0
    online_different: int = 0
    requests: int = 0
    codes: dict[str, int] = field(default_factory=dict)
    answers_checked: int = 0
    answers_wrong: int = 0
    anomalies: int = 0
    anomaly_duplicates: int = 0
    subscriber_missing: int = 0
    subscriber_repeated: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def converged(self) -> bool:
        """Online rows all equal the latest offline rows."""
        return self.online_checked > 0 and self.online_different == 0


class _Reader(threading.Thread):
    """GetOnlineFeatures for every symbol, again and again; keeps codes and answers."""

    def __init__(self, target: str, symbols: Sequence[str], pause_s: float = 0.02) -> None:
        super().__init__(daemon=True, name="chaos-reader")
        self.target = target
        self.symbols = list(symbols)
        self.pause_s = pause_s
        self.calls: list[tuple[float, str]] = []
        self.answers: set[tuple[str, int, float]] = set()
        self.stop = threading.Event()

    def run(self) -> None:
        request = feature_service_pb2.GetOnlineFeaturesRequest()
        request.features.features.append("bars_1m:close")
        values = request.entities["symbol"].values
        values.extend(types_pb2.Value(string_value=s) for s in self.symbols)
        with grpc.insecure_channel(self.target) as channel:
            stub = feature_service_pb2_grpc.FeatureServiceStub(channel)  # type: ignore[no-untyped-call]
            while not self.stop.is_set():
                at = time.monotonic()
                try:
                    reply = stub.GetOnlineFeatures(request, timeout=2.0)
                except grpc.RpcError as exc:
                    self.calls.append((at, exc.code().name))
                else:
                    self.calls.append((at, "OK"))
                    self._keep(reply)
                self.stop.wait(self.pause_s)

    def _keep(self, reply: Any) -> None:
        column = reply.columns[0]  # bars_1m:close, a value per symbol in the request's order
        for symbol, value, ts in zip(
            self.symbols, column.values, column.event_timestamps, strict=False
        ):
            if value.HasField("double_value"):
                micros = ts.seconds * 1_000_000 + ts.nanos // 1000
                self.answers.add((symbol, micros, value.double_value))


class _Subscriber(threading.Thread):
    """StreamAnomalies through the SDK from the run's start.

    The SDK's stream reconnects by itself within its retry budget; when that runs out (the
    server away for minutes), this opens the stream again just after the last anomaly received
    (its resume token), as an application would.
    """

    def __init__(self, target: str, since: datetime) -> None:
        super().__init__(daemon=True, name="chaos-subscriber")
        self.target = target
        self.since = since
        self.ids: list[str] = []
        self.reopened = 0
        self.error: str | None = None
        self.stream: Any = None
        self.closing = threading.Event()

    def run(self) -> None:
        from featurestore_client import FeatureStoreClient

        token: str | None = None
        while not self.closing.is_set():
            try:
                with FeatureStoreClient(self.target) as client:
                    if token is None:
                        self.stream = client.stream_anomalies(start_time=self.since)
                    else:
                        self.stream = client.stream_anomalies(resume_token=token)
                    for anomaly in self.stream:
                        self.ids.append(anomaly.anomaly_id)
                        token = anomaly.resume_token
            except Exception as exc:  # counted and reported; opened again
                if self.closing.is_set():
                    return
                self.reopened += 1
                self.error = f"{type(exc).__name__}: {exc}"
                self.closing.wait(1.0)

    def close(self) -> None:
        self.closing.set()
        if self.stream is not None:
            with contextlib.suppress(Exception):
                self.stream.close()


def _died_meanwhile(
    before: dict[str, RestartRecord], after: dict[str, RestartRecord], killed: str
) -> dict[str, str]:
    """Processes other than ``killed`` that the supervisor restarted between two readings."""
    return {
        name: record.last_exit or "unknown"
        for name, record in after.items()
        if name != killed and record.restarts > (before[name].restarts if name in before else 0)
    }


def _kill_group(component: Component) -> None:
    pid = component.process.pid()
    if pid is None:
        raise RuntimeError(f"{component.name} is not running")
    try:
        group = os.getpgid(pid)
        if group == os.getpgid(0):  # never this process's own group
            raise PermissionError(f"{component.name} shares the harness's process group")
        os.killpg(group, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(psutil.NoSuchProcess, psutil.TimeoutExpired):
        psutil.Process(pid).wait(30)


class ChaosRun:
    """One chaos run on an :class:`OwnStack` that is up."""

    def __init__(self, own: OwnStack, *, recover_limit_s: float = 300.0) -> None:
        self.own = own
        self.settings = own.settings
        self.stack = own.stack
        self.recover_limit_s = recover_limit_s
        self.topic = self.settings.topics.trades
        self.definitions = load_definitions(self.settings)

    # -- progress ----------------------------------------------------------------------------

    def end_offsets(self) -> dict[int, int]:
        consumer = create_client(Consumer, self.settings.kafka.connection.consumer("chaos-ends"))
        try:
            meta = consumer.list_topics(self.topic, timeout=10)
            return {
                p: consumer.get_watermark_offsets(TopicPartition(self.topic, p), timeout=10)[1]
                for p in meta.topics[self.topic].partitions
            }
        finally:
            consumer.close()

    def committed(self) -> dict[int, int]:
        views = [v.name for v in self.definitions.views if v.source_topic == self.topic]
        with psycopg.connect(self.settings.postgres.dsn, connect_timeout=3) as conn:
            return stored_offsets(conn, "features", self.definitions.project, self.topic, views)

    def lag(self) -> int | None:
        """Records between the processor's committed offsets and the topic's end now."""
        try:
            ends, done = self.end_offsets(), self.committed()
        except Exception:  # Kafka or PostgreSQL away: no figure now
            return None
        return sum(max(0, end - done.get(p, 0)) for p, end in ends.items())

    def caught_up_to(self, ends: dict[int, int]) -> bool:
        try:
            done = self.committed()
        except psycopg.Error:
            return False
        return all(done.get(p, 0) >= end for p, end in ends.items() if end > 0)

    def all_healthy(self, names: Sequence[str]) -> bool:
        return all(self.stack.component(name).healthy() for name in names)

    # -- the run -----------------------------------------------------------------------------

    def kill_each(
        self, components: Sequence[str], reader: _Reader, settle_s: float = 5.0
    ) -> list[Kill]:
        from featurestore.stack.supervisor import read_records

        watched = ["grpc", "processors", *([] if "scorer" not in self.own.services else ["scorer"])]
        kills = []
        for name in components:
            component = self.stack.component(name)
            time.sleep(settle_s)
            kill = Kill(name)
            kill.lag_before = self.lag()
            before = read_records(self.stack.supervisor.state_file)
            began = time.monotonic()
            logger.warning("chaos: SIGKILL %s", name)
            _kill_group(component)
            deadline = began + self.recover_limit_s
            while time.monotonic() < deadline and not self.all_healthy([name, *watched]):
                if kill.alone_s is None and component.healthy():
                    kill.alone_s = time.monotonic() - began
                time.sleep(0.25)
            if self.all_healthy([name, *watched]):
                kill.healthy_s = time.monotonic() - began
                kill.alone_s = kill.alone_s or kill.healthy_s
                ends = self.end_offsets()
                allowed = (kill.lag_before or 0) + int(5 * self.own.rate)
                while time.monotonic() < deadline:
                    if kill.back_s is None and (self.lag() or 0) <= allowed:
                        kill.back_s = time.monotonic() - began
                    if self.caught_up_to(ends):
                        kill.recovered_s = time.monotonic() - began
                        kill.back_s = kill.back_s or kill.recovered_s
                        break
                    time.sleep(0.5)
            until = began + (kill.back_s or self.recover_limit_s)
            window = [code for at, code in list(reader.calls) if began <= at <= until]
            kill.requests = len(window)
            kill.failed = dict(collections.Counter(c for c in window if c != "OK"))
            after = read_records(self.stack.supervisor.state_file)
            record = after.get(name)
            kill.restarts = record.restarts if record is not None else 0
            kill.collateral = _died_meanwhile(before, after, name)
            logger.warning("chaos: %s", kill)
            kills.append(kill)
        return kills

    def startup_times(self, components: Sequence[str]) -> dict[str, float]:
        """Each component stopped on purpose, started alone and timed until healthy.

        Before the load: what its start-up costs by itself, beside what a kill under load
        costs. Between two, every service is let become healthy again.
        """
        servers = {c.name for c in self.stack.servers}
        watched = ["grpc", "processors", *([] if "scorer" not in self.own.services else ["scorer"])]
        times = {}
        for name in components:
            self.stack.component(name).stop()
            began = time.monotonic()
            if name in servers:
                self.stack.up([name])
            else:
                self.stack.start_services([name])
            times[name] = time.monotonic() - began
            logger.warning("chaos: %s started alone in %.1f s", name, times[name])
            deadline = time.monotonic() + self.recover_limit_s
            while time.monotonic() < deadline and not self.all_healthy(watched):
                time.sleep(0.25)
        return times

    def check(self, report: ChaosReport, reader: _Reader, subscriber: _Subscriber) -> None:
        """Fill the report's checks; call once the feed stopped and the processor caught up."""
        trades = self.logged_trades()
        report.trades = len(trades)
        bars_view = self.definitions.view("bars_1m")
        got = self.offline(bars_view.source.table, ["open", "high", "low", "close", "volume",
                                                    "trade_count"])  # fmt: skip
        want = independent_bars(trades)
        report.bars_rows = len(got)
        report.duplicated = int(got.duplicated(["symbol", "event_us"]).sum())
        merged = want.merge(got, on=["symbol", "event_us"], how="outer", indicator=True,
                            suffixes=("_want", "_got"))  # fmt: skip
        report.bars_missing = int((merged["_merge"] == "left_only").sum())
        extra = merged[merged["_merge"] == "right_only"]
        report.boundary_rows, report.boundary_different = _boundary_rows(extra, want)
        report.bars_extra = len(extra) - report.boundary_rows
        both = merged[merged["_merge"] == "both"]
        different = pd.Series(False, index=both.index)
        for column in ("open", "high", "low", "close", "volume", "trade_count"):
            a, b = both[f"{column}_want"].astype(float), both[f"{column}_got"].astype(float)
            different |= (a - b).abs() > 1e-9 * b.abs().clip(lower=1.0)
        report.bars_different = int(different.sum())
        last = got.assign(minute=got["event_us"] // 60_000_000)
        last = last.sort_values("event_us").groupby(["symbol", "minute"]).tail(1)
        counted = int(last["trade_count"].sum())
        report.lost = max(0, report.trades - counted)
        report.duplicated += max(0, counted - report.trades)  # trades counted twice
        self.check_online(report, got)
        report.codes = dict(collections.Counter(code for _, code in reader.calls))
        report.requests = len(reader.calls)
        answers = pd.DataFrame(sorted(reader.answers), columns=["symbol", "event_us", "close"])
        check = answers.merge(got[["symbol", "event_us", "close"]], on=["symbol", "event_us"],
                              how="left", suffixes=("", "_offline"))  # fmt: skip
        report.answers_checked = len(check)
        report.answers_wrong = int(
            (check["close_offline"].isna() | ((check["close"] - check["close_offline"]).abs()
                                              > 1e-9)).sum()
        )  # fmt: skip
        ids = self.anomaly_ids()
        counts = collections.Counter(ids)
        report.anomalies = len(counts)
        report.anomaly_duplicates = sum(n - 1 for n in counts.values())
        received = collections.Counter(subscriber.ids)
        report.subscriber_missing = len(set(counts) - set(received))
        report.subscriber_repeated = sum(n - 1 for n in received.values() if n > 1)
        if subscriber.reopened:
            report.notes.append(
                f"the subscriber's SDK stream gave up {subscriber.reopened} times and was opened "
                f"again from its last resume token; last error: {subscriber.error}"
            )

    def logged_trades(self) -> pd.DataFrame:
        with ConfluentSchemaStore.from_settings(self.settings.schema_registry) as store:
            rows = [
                (item.event.symbol, to_micros(item.event.event_time), item.event.price,
                 float(item.event.size), item.partition, item.offset)
                for item in replay_topic(self.settings.kafka.connection, store, self.topic)
                if isinstance(item, LoggedEvent) and isinstance(item.event, Trade)
            ]  # fmt: skip
        return pd.DataFrame(rows, columns=["symbol", "event_us", "price", "size", "partition",
                                           "offset"])  # fmt: skip

    def offline(self, table: str, columns: Sequence[str]) -> pd.DataFrame:
        names = ", ".join(f'"{c}"' for c in columns)
        query = (
            f"SELECT symbol, (extract(epoch FROM event_timestamp) * 1000000)::bigint, {names} "
            f'FROM "{table}"'
        )
        with psycopg.connect(self.settings.postgres.dsn) as conn:
            rows = conn.execute(query).fetchall()
        return pd.DataFrame(rows, columns=["symbol", "event_us", *columns])

    def check_online(self, report: ChaosReport, bars: pd.DataFrame) -> None:
        latest = bars.sort_values("event_us").groupby("symbol").tail(1).set_index("symbol")
        reader = _Reader(f"{self.settings.grpc.host}:{self.settings.grpc.port}", latest.index)
        reader.stop.set()
        with grpc.insecure_channel(reader.target) as channel:
            stub = feature_service_pb2_grpc.FeatureServiceStub(channel)  # type: ignore[no-untyped-call]
            request = feature_service_pb2.GetOnlineFeaturesRequest()
            request.features.features.append("bars_1m:close")
            request.entities["symbol"].values.extend(
                types_pb2.Value(string_value=s) for s in latest.index
            )
            reader._keep(stub.GetOnlineFeatures(request, timeout=10))
        online = {symbol: (at, close) for symbol, at, close in reader.answers}
        report.online_checked = len(latest)
        report.online_different = sum(
            online.get(symbol) != (int(row.event_us), float(row.close))
            for symbol, row in latest.iterrows()
        )

    def anomaly_ids(self) -> list[str]:
        from featurestore.events import Anomaly

        with ConfluentSchemaStore.from_settings(self.settings.schema_registry) as store:
            return [
                item.event.anomaly_id
                for item in replay_topic(
                    self.settings.kafka.connection, store, self.settings.topics.anomalies
                )
                if isinstance(item, LoggedEvent) and isinstance(item.event, Anomaly)
            ]


def _boundary_rows(extra: pd.DataFrame, want: pd.DataFrame) -> tuple[int, int]:
    """Of the table's rows the recomputation lacks, those at a closed minute boundary b (at
    ``b - 1 us`` and at ``b``), and how many of them are not what the engine documents: at
    ``b - 1 us`` the minute's last bar, at ``b`` an empty bar."""
    # At b itself the running bar covers [b, b]: empty unless a trade is at b (then the
    # recomputation has the row too).
    at_start = extra[extra["event_us"] % 60_000_000 == 0]
    not_empty = int((at_start["trade_count_got"].fillna(0) != 0).sum())
    at_end = extra[(extra["event_us"] + 1) % 60_000_000 == 0]
    if at_end.empty:
        return len(at_start), not_empty
    columns = ("open", "high", "low", "close", "volume", "trade_count")
    last = want.assign(minute=want["event_us"] // 60_000_000)
    last = last.sort_values("event_us").groupby(["symbol", "minute"]).tail(1)
    last = last.rename(columns={c: f"{c}_last" for c in columns}).drop(columns=["event_us"])
    rows = at_end.assign(minute=at_end["event_us"] // 60_000_000)
    paired = rows.merge(last, on=["symbol", "minute"], how="left")
    different = paired["close_last"].isna()
    for column in columns:
        a, b = paired[f"{column}_got"].astype(float), paired[f"{column}_last"].astype(float)
        different |= (a - b).abs() > 1e-9 * b.abs().clip(lower=1.0)
    return len(rows) + len(at_start), int(different.sum()) + not_empty


def independent_bars(trades: pd.DataFrame) -> pd.DataFrame:
    """``bars_1m`` recomputed from the trades, not with the processors' code.

    A row at every trade time t of a symbol: the trades of the calendar minute containing t
    with event time <= t (in log order at equal times); the last trade at t gives the close.
    """
    frame = trades.sort_values(["symbol", "event_us", "partition", "offset"]).copy()
    frame["minute"] = frame["event_us"] // 60_000_000
    group = frame.groupby(["symbol", "minute"], sort=False)
    frame["open"] = group["price"].transform("first")
    frame["high"] = group["price"].cummax()
    frame["low"] = group["price"].cummin()
    frame["close"] = frame["price"]
    frame["volume"] = group["size"].cumsum()
    frame["trade_count"] = group.cumcount() + 1
    rows = frame.groupby(["symbol", "event_us"], sort=False).tail(1)
    return rows[["symbol", "event_us", "open", "high", "low", "close", "volume", "trade_count"]]


def synthetic_symbols(count: int, seed: int = 7) -> list[str]:
    """The symbols of the feed's synthetic market (they depend on the seed only)."""
    from featurestore.ingest.sources.synthetic import MarketConfig
    from featurestore.ingest.sources.synthetic import SyntheticMarket

    config = MarketConfig(start=datetime.now(UTC), symbols=count, seed=seed)
    return list(SyntheticMarket(config).symbols)


def run_chaos(
    own: OwnStack,
    components: Sequence[str] = COMPONENTS,
    *,
    warmup_s: float = 30.0,
    settle_s: float = 5.0,
    recover_limit_s: float = 300.0,
    startup: bool = False,
    on_phase: Callable[[str], None] = lambda phase: None,
) -> ChaosReport:
    """Bring ``own`` up, load it, kill ``components`` one at a time, check; always brought down.

    With ``startup``, first time each component's start alone (:meth:`ChaosRun.startup_times`).
    """
    began = time.monotonic()
    report = ChaosReport(rate=own.rate, seconds=0.0, recover_limit_s=recover_limit_s)
    try:
        on_phase("bringing the stack up")
        own.up()
        run = ChaosRun(own, recover_limit_s=recover_limit_s)
        if startup:
            on_phase("timing each component's start alone")
            report.startup = run.startup_times(components)
        since = datetime.now(UTC)
        own.start_feed()
        target = f"{own.settings.grpc.host}:{own.settings.grpc.port}"
        reader = _Reader(target, synthetic_symbols(own.symbols))
        subscriber = _Subscriber(target, since)
        reader.start()
        subscriber.start()
        on_phase(f"warm-up {warmup_s:g} s")
        time.sleep(warmup_s)
        on_phase("killing")
        report.kills = run.kill_each(components, reader, settle_s)
        on_phase("stopping the feed, catching up")
        own.stop_feed()
        ends = run.end_offsets()
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and not run.caught_up_to(ends):
            time.sleep(1)
        time.sleep(10)  # the scorer's last poll and the subscriber's last messages
        reader.stop.set()
        reader.join(10)
        subscriber.close()
        on_phase("checking")
        run.check(report, reader, subscriber)
    finally:
        on_phase("bringing the stack down")
        own.down()
        report.seconds = time.monotonic() - began
    return report
