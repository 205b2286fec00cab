"""Training end to end: export, fit, evaluate, log, register, promote.

::

    context = TrainingContext.from_settings(settings, definitions)
    with context.store:  # leaving closes the store's connections
        reports = train(["anomaly", "direction", "regime"], context, TrainOptions(seed=7))

Data comes from the offline store's point-in-time export (``data_source="store"``), or from a
file of one (``data_source="file"``: Parquet or CSV with ``symbol``, ``event_timestamp``, the
``view__feature`` columns and the labels, as ``featurestore export --labels`` writes it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from dataclasses import replace
from pathlib import Path
from typing import Literal

from featurestore.config import Settings
from featurestore.definitions import Definitions
from featurestore.errors import ValidationError
from featurestore.offline import LabelSpec
from featurestore.offline import PostgresOfflineStore
from models.data import Dataset
from models.data import DatasetSpec
from models.data import DataWindow
from models.data import SplitSpec
from models.data import load_dataset
from models.data import read_dataset
from models.demo.market import Injection
from models.registry import ModelRegistry
from models.tracking import LoggedModel
from models.tracking import log_and_register
from models.training.anomaly import fit_anomaly
from models.training.base import TrainedModel
from models.training.direction import fit_direction
from models.training.forward_return import fit_forward_return
from models.training.regime import fit_regime

__all__ = [
    "FEATURE_SERVICES",
    "KINDS",
    "TrainOptions",
    "TrainReport",
    "TrainingContext",
    "fit",
    "model_name",
    "train",
]

Kind = Literal["anomaly", "direction", "regime", "lstm", "rf"]
KINDS: tuple[Kind, ...] = ("anomaly", "direction", "regime", "lstm", "rf")
TABULAR: tuple[Kind, ...] = ("anomaly", "direction", "regime", "rf")

FEATURE_SERVICES: dict[str, str] = {
    "anomaly": "anomaly_features_v1",
    "direction": "direction_features_v1",
    "regime": "market_features_v1",
    "lstm": "direction_features_v1",
    "rf": "direction_features_v1",
}
"""The feature service each kind trains on by default."""


def model_name(kind: str, prefix: str = "featurestore-") -> str:
    """The registered model name of a kind (``featurestore-anomaly``, ...)."""
    return f"{prefix}{kind}"


@dataclass(frozen=True)
class TrainingContext:
    """Where data comes from and where models go."""

    store: PostgresOfflineStore
    dsn: str = field(repr=False)
    """PostgreSQL's connection string: it holds the password, so it is not in the ``repr``."""
    registry: ModelRegistry

    @classmethod
    def from_settings(cls, settings: Settings, definitions: Definitions) -> TrainingContext:
        """The offline store and registry the settings name."""
        dsn = settings.postgres.dsn
        return cls(
            PostgresOfflineStore.from_settings(settings, definitions),
            dsn,
            ModelRegistry(settings.mlflow.tracking_uri),
        )


@dataclass(frozen=True)
class TrainOptions:
    """How to train (the defaults are those of ``featurestore train``)."""

    window: DataWindow = field(default_factory=DataWindow)
    labels: LabelSpec = field(default_factory=LabelSpec)
    split: SplitSpec | None = None
    """``None``: 60/20/20 with a gap of the labels' reach."""
    seed: int = 42
    shuffle_labels: bool = False
    """The leakage canary: labels permuted across time before splitting."""
    name_prefix: str = "featurestore-"
    experiment: str = "featurestore-models"
    promote: Literal["auto", "always", "never"] = "auto"
    feature_services: dict[str, str] = field(default_factory=dict)
    """Overrides of :data:`FEATURE_SERVICES` per kind."""
    anomaly_flag_rate: float = 0.02
    """Share of training rows above the anomaly threshold (its 98th percentile by default)."""
    injections: Sequence[Injection] = ()
    """Known injected anomalies: the anomaly model's precision and recall are measured on them."""
    tags: dict[str, str] = field(default_factory=dict)
    """Extra run and version tags."""
    epochs: int = 20
    """The LSTM's most epochs (it stops earlier when validation loss stops improving)."""
    seq_len: int = 30
    """The LSTM's sequence length: rows per sample, the newest included."""
    data_file: Path | None = None
    """Train on this exported file instead of the offline store (``--data-source file``)."""


@dataclass(frozen=True)
class TrainReport:
    """One trained and registered model."""

    kind: str
    logged: LoggedModel
    metrics: dict[str, float]
    seconds: float


def fit(kind: str, dataset: Dataset, options: TrainOptions) -> TrainedModel:
    """Fit one kind on a loaded dataset (no MLflow)."""
    spec = options.split or SplitSpec()
    if kind == "anomaly":
        return fit_anomaly(
            dataset,
            spec,
            options.seed,
            flag_rate=options.anomaly_flag_rate,
            injections=options.injections,
        )
    if kind == "direction":
        return fit_direction(dataset, spec, options.seed, shuffle_labels=options.shuffle_labels)
    if kind == "regime":
        return fit_regime(dataset, spec, options.seed, shuffle_labels=options.shuffle_labels)
    if kind == "lstm":
        from models.training.lstm import fit_lstm

        return fit_lstm(
            dataset,
            spec,
            options.seed,
            shuffle_labels=options.shuffle_labels,
            epochs=options.epochs,
            window=options.seq_len,
        )
    if kind == "rf":
        return fit_forward_return(
            dataset, spec, options.seed, shuffle_labels=options.shuffle_labels
        )
    raise ValidationError(f"unknown model kind {kind!r} (known: {', '.join(KINDS)})", field="kind")


def train(
    kinds: Sequence[str], context: TrainingContext, options: TrainOptions = TrainOptions()
) -> list[TrainReport]:
    """Train, log and register each kind; datasets are exported once per feature service."""
    import time

    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise ValidationError(
            f"unknown model kinds {unknown} (known: {', '.join(KINDS)})", field="kind"
        )
    datasets: dict[str, Dataset] = {}
    reports = []
    for kind in kinds:
        began = time.perf_counter()
        service = options.feature_services.get(kind, FEATURE_SERVICES[kind])
        spec = DatasetSpec(service, options.window, options.labels)
        if options.split is None:
            options = replace(options, split=SplitSpec(gap=spec.label_reach))
        if service not in datasets:
            datasets[service] = (
                load_dataset(context.store, context.dsn, spec)
                if options.data_file is None
                else read_dataset(options.data_file, service, options.window)
            )
        trained = fit(kind, datasets[service], options)
        tags = {"shuffle_labels": str(options.shuffle_labels).lower(), **options.tags}
        logged = log_and_register(
            trained,
            context.registry,
            model_name=model_name(kind, options.name_prefix),
            experiment=options.experiment,
            promote=options.promote,
            extra_tags=tags,
        )
        reports.append(TrainReport(kind, logged, trained.metrics, time.perf_counter() - began))
    return reports
