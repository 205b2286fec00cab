"""Which scorer each view gets, and a first detector for a view that has no model yet.

A view's anomaly model is the champion of :func:`~models.anomaly.model.model_name_for` (or a
name given). A streaming detector (``model_kind`` ``stream_anomaly``) is scored by
:class:`~models.anomaly.scorer.StreamScorer`; ``rolling_1m``'s IsolationForest, the market
model ``make run`` trains first, by :class:`models.scoring.AnomalyScorer` as before.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

import pandas as pd

from featurestore.definitions import Definitions
from featurestore.definitions import FeatureView
from featurestore.errors import NotFoundError
from featurestore.errors import ValidationError
from featurestore.events import Anomaly
from featurestore.offline import OfflineStore
from models.anomaly.history import view_rows
from models.anomaly.model import KIND
from models.anomaly.model import LEGACY_VIEW
from models.anomaly.model import model_name_for
from models.anomaly.scorer import StreamScorer
from models.data.source import latest_time
from models.registry import CHAMPION
from models.registry import ModelRegistry
from models.scoring import AnomalyScorer
from models.tracking import LoggedModel

__all__ = ["FIT_SPAN", "ViewScoring", "ensure_detector", "scoring_for_view"]

logger = logging.getLogger(__name__)

FIT_SPAN = timedelta(days=1)
"""A first detector is fitted on the view's last day of rows (by event time)."""


@dataclass
class ViewScoring:
    """One view's scorer and what following its table needs."""

    view: FeatureView
    entity_key: str
    model_name: str
    scorer: StreamScorer | AnomalyScorer

    def version(self) -> str:
        """The model version scoring uses now."""
        return self.scorer.current.ref.version

    def score_rows(self, rows: pd.DataFrame) -> Sequence[Anomaly]:
        """The anomalies among new rows (the :class:`~models.follow.RowScorer` protocol)."""
        return self.scorer.score_rows(rows)


def scoring_for_view(
    definitions: Definitions,
    registry: ModelRegistry,
    dsn: str,
    store: OfflineStore,
    view_name: str,
    *,
    model_name: str | None = None,
    poll_interval_s: float = 5.0,
) -> ViewScoring:
    """The scorer of ``view_name``: its model's champion decides which kind.

    Raises:
        NotFoundError: no such view, or its model has no champion.
    """
    view = definitions.view(view_name)
    name = model_name or model_name_for(view_name)
    ref = registry.alias(name, CHAMPION)
    if ref is None:
        raise NotFoundError(
            f"model {name!r} of view {view_name!r} has no {CHAMPION!r} version; train one with "
            f"`featurestore anomalies train --view {view_name} --feature ...`"
        )
    key = definitions.join_key(view)
    scorer: StreamScorer | AnomalyScorer
    if ref.tags.get("model_kind") == KIND:
        scorer = StreamScorer(registry, name, view, dsn, poll_interval_s=poll_interval_s)
    elif view_name == LEGACY_VIEW:
        scorer = AnomalyScorer(registry, name, store=store, poll_interval_s=poll_interval_s)
    else:
        raise ValidationError(
            f"{ref.uri} (model_kind {ref.tags.get('model_kind')!r}) cannot score view "
            f"{view_name!r}: only a streaming detector ({KIND!r}) scores any view",
            field="model",
        )
    return ViewScoring(view, key, name, scorer)


def ensure_detector(
    definitions: Definitions,
    registry: ModelRegistry,
    dsn: str,
    view_name: str,
    features: Sequence[str],
    *,
    model_name: str | None = None,
) -> LoggedModel | None:
    """Fit and register a detector for a view whose model has no champion; None if it has.

    Fitted on the view's last :data:`FIT_SPAN` of rows; on an empty table the detector gets the
    default parameters (it needs no labels, and calibrates each entity's scale as it warms up),
    tagged ``data_source`` accordingly.
    """
    from models.training.anomaly import fit_detector
    from models.training.anomaly import register_detector

    name = model_name or model_name_for(view_name)
    if registry.alias(name, CHAMPION) is not None:
        return None
    view = definitions.view(view_name)
    key = definitions.join_key(view)
    end = latest_time(dsn, view)
    if end is None:
        rows = pd.DataFrame(columns=[key, "event_timestamp", *features])
    else:
        rows = view_rows(dsn, view, key, features, start=end - FIT_SPAN, end=end)
    config, metrics = fit_detector(rows, view, key, features)
    source = f"{view.source.table}: {len(rows)} rows" + (
        "" if len(rows) else " (none yet: default parameters)"
    )
    logged = register_detector(
        config, metrics, registry, model_name=name, tags={"data_source": source}
    )
    logger.info("registered %s version %s for view %s", name, logged.ref.version, view_name)
    return logged
