"""Recording a trained model in MLflow: the run, its metrics and data, the registered version."""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from mlflow.models import infer_signature

from featurestore.errors import NotFoundError
from featurestore.errors import ValidationError
from models._mlflow import MlflowException
from models._mlflow import mlflow
from models._mlflow import quiet
from models.drift import reference_histograms
from models.pyfunc import NATIVE_ARTIFACT
from models.registered import MODEL_CODE
from models.registry import CHAMPION
from models.registry import ModelRef
from models.registry import ModelRegistry
from models.registry import mlflow_error
from models.training.base import TrainedModel

__all__ = [
    "DRIFT_REFERENCE",
    "LoggedModel",
    "log_and_register",
    "log_drift_reference",
    "read_reference",
]

DRIFT_REFERENCE = "drift_reference.json"
"""Run artifact: the training inputs' histograms that drift is measured against."""

_REQUIREMENTS = ("mlflow", "scikit-learn", "pandas", "numpy", "skops", "xgboost-cpu")


@dataclass(frozen=True)
class LoggedModel:
    """Where a trained model ended up."""

    ref: ModelRef
    run_id: str
    promoted: bool


def _pip_requirements(flavor: str) -> list[str]:
    pins = []
    for name in (*_REQUIREMENTS, *(("onnxruntime",) if flavor == "onnx" else ())):
        try:
            pins.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    return pins


def log_and_register(
    trained: TrainedModel,
    registry: ModelRegistry,
    *,
    model_name: str,
    experiment: str,
    promote: str = "auto",
    extra_tags: dict[str, str] | None = None,
) -> LoggedModel:
    """Log the run (params, metrics, data range, drift reference) and register the model.

    Args:
        trained: what a trainer returned.
        registry: the registry of the tracking server to log to.
        model_name: registered model name.
        experiment: MLflow experiment name.
        promote: ``always`` moves the ``champion`` alias to the new version, ``never`` leaves it,
            ``auto`` sets it only when the model has no champion yet.
        extra_tags: more run and version tags (e.g. where the data came from).
    """
    dataset = trained.dataset
    data_tags = {
        "feature_service": dataset.feature_service,
        "data_start": dataset.start.isoformat(),
        "data_end": dataset.end.isoformat(),
        "model_kind": trained.kind,
        **trained.tags,
        **(extra_tags or {}),
    }
    if trained.threshold is not None:
        data_tags["threshold"] = repr(trained.threshold)
    example = trained.input_example()
    output = trained.wrapper.predict(None, example)
    mlflow.set_tracking_uri(registry.tracking_uri)
    mlflow.set_registry_uri(registry.tracking_uri)
    with quiet():
        mlflow.set_experiment(experiment)
        with (
            mlflow.start_run(run_name=f"{trained.kind}") as run,
            tempfile.TemporaryDirectory() as tmp,
        ):
            mlflow.set_tags(data_tags)
            mlflow.log_params(_params(trained))
            mlflow.log_metrics({k: v for k, v in trained.metrics.items() if np.isfinite(v)})
            reference = reference_histograms(trained.reference)
            mlflow.log_dict(reference, DRIFT_REFERENCE)
            native = trained.save_native(tmp)
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=MODEL_CODE,
                model_config=trained.model_config(),
                artifacts={NATIVE_ARTIFACT: native},
                signature=infer_signature(example, output),
                input_example=example,
                pip_requirements=_pip_requirements(trained.config.flavor),
                registered_model_name=model_name,
            )
    ref = ModelRef(model_name, str(info.registered_model_version), run.info.run_id)
    registry.tag(ref, data_tags | {"run_id": run.info.run_id})
    promoted = promote == "always" or (
        promote == "auto" and registry.alias(model_name, CHAMPION) is None
    )
    if promoted:
        registry.promote(model_name, ref.version)
    return LoggedModel(ref, run.info.run_id, promoted)


def _params(trained: TrainedModel) -> dict[str, Any]:
    split = trained.split
    params: dict[str, Any] = {
        **trained.params,
        "features": json.dumps(list(trained.config.feature_columns)),
        "rows": len(trained.dataset.frame),
        "train_rows": int(split.train.sum()),
        "valid_rows": int(split.valid.sum()),
        "test_rows": int(split.test.sum()),
        "valid_start": split.valid_start.isoformat(),
        "test_start": split.test_start.isoformat(),
    }
    return {
        k: (v if isinstance(v, int | float | str | bool) else str(v)) for k, v in params.items()
    }


def log_drift_reference(inputs: pd.DataFrame) -> None:
    """Record the training ``inputs`` as the drift reference of the active MLflow run.

    For a model trained outside ``featurestore train``: call it in the run that logs the model,
    with the frame it was fitted on (columns ``view__feature``, as its signature names them).
    The monitor and ``featurestore drift`` then measure each input of the live rows against
    these histograms (deciles of each column, and its share of missing values).

    Raises:
        ValidationError: no run is active, or a column is not numeric.
    """
    if mlflow.active_run() is None:
        raise ValidationError(
            "no active MLflow run: record the reference inside the `with mlflow.start_run():`"
            " that logs the model",
            field="run",
        )
    try:
        values = inputs.astype("float64")
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"the model inputs must be numbers: {exc}", field="inputs") from exc
    with quiet():
        mlflow.log_dict(reference_histograms(values), DRIFT_REFERENCE)


def read_reference(registry: ModelRegistry, ref: ModelRef) -> dict[str, Any]:
    """The drift reference a version's run recorded.

    Raises:
        NotFoundError: the version has no run, or its run no reference (saying how to log one).
        ValidationError: the reference is not one :func:`log_drift_reference` writes.
        BackendUnavailableError: MLflow cannot be reached; FeatureStoreError: it refused.
    """
    if ref.run_id is None or DRIFT_REFERENCE not in _artifacts(registry, ref):
        raise NotFoundError(
            f"{ref.uri} has no drift reference ({DRIFT_REFERENCE} of its run): log one in the"
            " run that logs the model, models.tracking.log_drift_reference(inputs)"
        )
    doing = f"reading the drift reference of {ref.uri}"
    try:
        with quiet(), tempfile.TemporaryDirectory() as tmp:
            path = mlflow.artifacts.download_artifacts(
                run_id=ref.run_id,
                artifact_path=DRIFT_REFERENCE,
                dst_path=tmp,
                tracking_uri=registry.tracking_uri,
            )
            text = Path(path).read_text()
    except (MlflowException, OSError) as exc:
        raise mlflow_error(exc, doing) from exc
    try:
        data = json.loads(text)
        ok = isinstance(data["bins"], int) and all(
            {"edges", "shares", "missing"} <= set(f) for f in data["features"].values()
        )
    except (ValueError, TypeError, KeyError, AttributeError):
        ok = False
    if not ok:
        raise ValidationError(
            f"{ref.uri}: {DRIFT_REFERENCE} of its run is not a drift reference"
            " (models.tracking.log_drift_reference writes one)",
            field="model",
        )
    reference: dict[str, Any] = data
    return reference


def _artifacts(registry: ModelRegistry, ref: ModelRef) -> set[str]:
    """The paths of the top-level artifacts of a version's run."""
    assert ref.run_id is not None
    try:
        return {a.path for a in registry.client.list_artifacts(ref.run_id)}
    except (MlflowException, OSError) as exc:
        raise mlflow_error(exc, f"listing the artifacts of {ref.uri}'s run") from exc
