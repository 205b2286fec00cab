"""The streaming scorer of one view: new rows in, ``Anomaly`` events out, state per entity.

:class:`StreamScorer` is the :class:`~models.follow.RowScorer` that ``featurestore score
--follow --view V`` runs for a view whose model is a streaming detector
(:data:`models.anomaly.model.KIND`). It keeps one detector state per (entity, feature); an
entity met for the first time (at start, or new) is warmed up first on its stored rows just
before its first new one (:func:`~models.anomaly.history.recent_rows`), so a restarted scorer
scores as if it had never stopped, up to the detector's memory. Rows not newer than an entity's
last scored time (a late revision of a minute already scored) are skipped: each (entity, time)
is scored once, on the first version stored.

The model is the version the alias (``champion``) points at (:class:`~models.alias.AliasFollower`);
a promotion is used from the next batch on, with fresh states (warmed up again), since states of
other parameters mean nothing to it. Anomaly ids are deterministic (model, version, entity, event
time), so re-scoring gives the same ids.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC
from datetime import datetime

import pandas as pd

from featurestore.definitions import FeatureView
from featurestore.errors import ValidationError
from featurestore.events import Anomaly
from models.alias import AliasFollower
from models.anomaly.detector import SeriesState
from models.anomaly.history import recent_rows
from models.anomaly.model import KIND
from models.anomaly.model import DetectorConfig
from models.anomaly.model import score_frame
from models.registry import CHAMPION
from models.registry import ModelRef
from models.registry import ModelRegistry
from models.scoring import anomaly_id

__all__ = ["LoadedDetector", "StreamScorer", "load_detector"]


@dataclass(frozen=True)
class LoadedDetector:
    """A registered detector version and its configuration."""

    ref: ModelRef
    config: DetectorConfig


def load_detector(registry: ModelRegistry, ref: ModelRef) -> LoadedDetector:
    """Load a version registered by :func:`models.training.anomaly.register_detector`.

    Raises:
        ValidationError: the version is not a streaming detector.
    """
    if ref.tags.get("model_kind") != KIND:
        raise ValidationError(
            f"{ref.uri} is not a streaming anomaly detector "
            f"(model_kind {ref.tags.get('model_kind')!r}, want {KIND!r})",
            field="model",
        )
    model = registry.load(ref)
    config = model.unwrap_python_model().config
    if not isinstance(config, DetectorConfig):
        raise ValidationError(f"{ref.uri} holds no detector configuration", field="model")
    return LoadedDetector(ref, config)


class StreamScorer(AliasFollower[LoadedDetector]):
    """Scores a view's new rows with its champion detector, one state per entity.

    Args:
        registry: the MLflow registry.
        model_name: the view's registered detector.
        view: the view scored (its offline table is where entities are warmed up from).
        dsn: the offline store.
        alias: the alias to follow.
        poll_interval_s: how often :meth:`start`'s thread reads the alias.
    """

    def __init__(
        self,
        registry: ModelRegistry,
        model_name: str,
        view: FeatureView,
        dsn: str,
        *,
        alias: str = CHAMPION,
        poll_interval_s: float = 5.0,
    ) -> None:
        """Load the version ``alias`` points at.

        Raises:
            NotFoundError: the alias is not set.
            ValidationError: its version is not a streaming detector of ``view``.
        """
        self.view = view
        self.dsn = dsn
        super().__init__(registry, model_name, alias=alias, poll_interval_s=poll_interval_s)
        self._scoring = self.current
        """The version the states are of (a promotion starts them afresh)."""
        self._states: dict[tuple[str, str], SeriesState] = {}

    def _load(self, ref: ModelRef) -> LoadedDetector:
        loaded = load_detector(self.registry, ref)
        if loaded.config.view != self.view.name:
            raise ValidationError(
                f"{loaded.ref.uri} scores view {loaded.config.view!r}, not {self.view.name!r}",
                field="view",
            )
        return loaded

    def _swap(self) -> LoadedDetector:
        """The version to score this batch with; states of another version are dropped."""
        used = self.current
        if used is not self._scoring:
            self._scoring, self._states = used, {}
        return used

    def _warm_up(self, used: LoadedDetector, rows: pd.DataFrame) -> None:
        """Warm the entities of ``rows`` that have no state on their rows just before."""
        config = used.config
        key = config.entity_key
        firsts = rows.groupby(rows[key].astype(str))["event_timestamp"].min()
        new = {
            str(entity): pd.Timestamp(at).to_pydatetime()
            for entity, at in firsts.items()
            if (str(entity), config.features[0]) not in self._states
        }
        if not new:
            return
        limit = config.params.warmup_steps * 2
        past = recent_rows(self.dsn, self.view, key, config.features, new, limit)
        for entity in new:
            for feature in config.features:
                self._states[(entity, feature)] = SeriesState()
        for _ in score_frame(config, past, self._states):
            pass  # the past only warms the states up

    def score_rows(self, rows: pd.DataFrame) -> list[Anomaly]:
        """The anomalies among ``rows``: one event per flagged row."""
        used = self._swap()
        config = used.config
        if rows.empty:
            return []
        rows = rows.assign(event_timestamp=pd.to_datetime(rows["event_timestamp"], utc=True))
        rows = rows.reset_index(drop=True)
        self._warm_up(used, rows)
        detected = datetime.now(UTC)
        times = rows["event_timestamp"]
        threshold = config.params.threshold
        out = []
        for scored in score_frame(config, rows, self._states):
            if not scored.flagged:
                continue
            event_time = pd.Timestamp(times.iloc[scored.index]).to_pydatetime()
            out.append(
                Anomaly(
                    anomaly_id=anomaly_id(
                        used.ref.name, used.ref.version, scored.entity, event_time
                    ),
                    symbol=scored.entity,
                    event_time=event_time,
                    score=scored.score,
                    model_name=used.ref.name,
                    model_version=used.ref.version,
                    detected_at=detected,
                    features=scored.values,
                    threshold=threshold,
                )
            )
        return out
