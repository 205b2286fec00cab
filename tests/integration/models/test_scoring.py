"""Online scoring: injected anomalies come out of the anomalies topic; promotions switch models.

Stated target: over the whole replayed demo stream (16 injected anomalies -- price spikes of 4 %
and volume bursts of 600,000 shares -- among 8 symbols x 240 minutes), at least 80 % of the
injected anomalies have a published event in their window (the injected minute and the 5 after
it) and at least 70 % of the published events lie in such a window. The threshold is the 98th
percentile of the training rows' scores.
"""

from __future__ import annotations

import time

import pandas as pd
import psycopg
import pytest

from featurestore.events import Anomaly
from featurestore.events import ConfluentSchemaStore
from featurestore.events import LoggedEvent
from featurestore.events import replay_topic
from models.follow import rows_created_after
from models.publish import AnomalyPublisher
from models.publish import ScoringHook
from models.registry import CHAMPION
from models.scoring import AnomalyScorer
from models.scoring import anomaly_id
from models.training.anomaly import anomaly_windows
from models.training.run import FEATURE_SERVICES
from models.training.run import TrainOptions
from models.training.run import train
from tests.integration.models.conftest import ModelsWorld

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def rolling_rows(world: ModelsWorld) -> pd.DataFrame:
    """The rolling_1m rows as the processors' hook hands them over (offline column names)."""
    view = world.definitions.view("rolling_1m")
    with psycopg.connect(world.settings.postgres.dsn) as conn:
        rows = rows_created_after(conn, view, pd.Timestamp(0, tz="UTC").to_pydatetime())
    return rows.sort_values(["event_timestamp", "symbol"]).reset_index(drop=True)


def consume(world: ModelsWorld, topic: str) -> list[Anomaly]:
    events = []
    with ConfluentSchemaStore.from_settings(world.settings.schema_registry) as store:
        for item in replay_topic(world.settings.kafka.connection, store, topic):
            assert isinstance(item, LoggedEvent), item
            assert isinstance(item.event, Anomaly)
            events.append(item.event)
    return events


def test_injected_anomalies_come_out_of_the_anomalies_topic(world: ModelsWorld, anomalies_topic):
    name = world.reports["anomaly"].logged.ref.name
    scorer = AnomalyScorer(world.registry, name, store=world.context.store)
    publisher = AnomalyPublisher.from_settings(world.settings, anomalies_topic)
    hook = ScoringHook(scorer, publisher)
    rows = rolling_rows(world)
    try:
        for start in range(0, len(rows), 200):  # micro-batches, as the stream delivers them
            hook(rows.iloc[start : start + 200])
    finally:
        publisher.close()

    events = consume(world, anomalies_topic)
    assert events, "no anomaly was published"
    version = scorer.current.ref.version
    assert {(e.model_name, e.model_version) for e in events} == {(name, version)}
    assert all(e.score >= e.threshold for e in events if e.threshold is not None)
    assert set(events[0].features) == set(scorer.current.columns)
    published = pd.DataFrame(
        {"symbol": [e.symbol for e in events], "event_timestamp": [e.event_time for e in events]}
    )
    in_window, ids = anomaly_windows(published, world.demo.injections)
    precision = in_window.mean()
    recall = len(set(ids[in_window])) / len(world.demo.injections)
    print(f"published {len(events)}: precision {precision:.2f}, event recall {recall:.2f}")
    assert recall >= 0.8 and precision >= 0.7
    # injected windows score far above normal rows
    scored = scorer.scores(rows)
    inside, _ = anomaly_windows(scored, world.demo.injections)
    assert scored["score"][inside].median() > scored["score"][~inside].quantile(0.9)
    # replaying the same rows gives the same ids
    again = scorer.score_rows(rows)
    assert sorted(a.anomaly_id for a in again) == sorted(e.anomaly_id for e in events)
    first = events[0]
    assert first.anomaly_id == anomaly_id(name, version, first.symbol, first.event_time)


def test_a_promotion_switches_the_scorer_without_restart(world: ModelsWorld):
    name = world.reports["anomaly"].logged.ref.name
    options = TrainOptions(
        seed=99, name_prefix=world.options.name_prefix, experiment=world.options.experiment,
        promote="never", feature_services={"anomaly": FEATURE_SERVICES["anomaly"]},
    )  # fmt: skip
    (challenger,) = train(["anomaly"], world.context, options)
    old = world.registry.alias(name, CHAMPION)
    assert old is not None and challenger.logged.ref.version != old.version
    rows = rolling_rows(world).tail(300)
    with AnomalyScorer(
        world.registry, name, poll_interval_s=0.2, store=world.context.store
    ) as scorer:
        before = scorer.scores(rows)["score"].to_numpy()
        assert scorer.current.ref.version == old.version
        world.registry.promote(name, challenger.logged.ref.version)
        try:
            deadline = time.monotonic() + 30
            while scorer.current.ref.version != challenger.logged.ref.version:
                assert time.monotonic() < deadline, "promotion not picked up within 30 s"
                time.sleep(0.1)
            after = scorer.scores(rows)["score"].to_numpy()
            assert not (before == after).all()  # another forest (seed 99) scores differently
            flagged = scorer.score_rows(rows)
            assert all(a.model_version == challenger.logged.ref.version for a in flagged)
        finally:
            world.registry.promote(name, old.version)
