"""Predict's scorers: the native model of a loaded MLflow model, called on a NumPy matrix.

MLflow's generic ``pyfunc.predict`` takes a pandas DataFrame and checks it against the signature
on every call; building the frame and checking it cost more than scoring (issue 18). Here the
check is done once, when a version is loaded, and each call passes the float64 matrix (rows x
signature columns, NaN where a feature is missing) straight to the native model:

- this project's models (:class:`models.pyfunc.FeatureModel`, the LSTM) say how they score a
  matrix themselves (:class:`NativeScoring`): XGBoost's predict on the array, scikit-learn's on
  the array, ONNX Runtime for the LSTM;
- models logged with MLflow's scikit-learn flavor: the estimator's ``predict`` (or the
  ``pyfunc_predict_fn`` they were logged with) on the array. Their recorded input names must be
  the signature's, in its order (checked once); they are then dropped from the loaded copy so
  that scikit-learn does not warn, on every call, that an array has no column names;
- models logged with MLflow's XGBoost flavor: what MLflow's own ``predict`` calls, on the array
  instead of a DataFrame: a ``Booster``'s ``inplace_predict`` (as its ``predict`` of a DMatrix:
  every tree, NaN missing), an ``XGBClassifier``'s or ``XGBRegressor``'s ``predict``. The
  booster's feature names, when it has them, must be the signature's, in its order (checked
  once, where MLflow's DMatrix would check them per call);
- anything else goes through ``pyfunc.predict`` on a DataFrame, as before (``runtime`` says
  ``pyfunc``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from typing import Protocol
from typing import runtime_checkable

import numpy as np

from featurestore.errors import ConfigurationError
from featurestore.mlflow_models import python_model_of

__all__ = ["NativeScoring", "Scorer", "SequenceScoring", "native_scorer"]

Scorer = Callable[[np.ndarray], np.ndarray]
"""Rows x columns (float64, NaN where missing) -> one score per row, or class probabilities."""


@runtime_checkable
class NativeScoring(Protocol):
    """A registered Python model that can score a matrix without pandas."""

    def native_scorer(self, columns: tuple[str, ...]) -> tuple[Scorer, str]:
        """The scorer of a matrix whose columns are ``columns``, and the runtime's name.

        Raises ConfigurationError when ``columns`` are not the model's inputs.
        """
        ...


@runtime_checkable
class SequenceScoring(Protocol):
    """A model scoring an entity's last ``window`` rows of ``sample_view`` (the LSTM).

    Predict reads the newest row online and the ``window - 1`` rows before it from the offline
    store: the state after those is computed once per (entity, newest row time) and kept; each
    call then runs only the last step, on the features just read.
    """

    @property
    def feature_columns(self) -> tuple[str, ...]:
        """The raw features of each step (``view__feature``), the matrices' columns."""
        ...

    @property
    def window(self) -> int:
        """Rows per sequence, the newest included."""
        ...

    @property
    def sample_view(self) -> str:
        """The view whose rows are the sequence's steps."""
        ...

    def sequence_state(self, history: np.ndarray) -> Any:
        """The recurrent state after ``history`` (entities x window-1 x columns, raw features)."""
        ...

    def stack_states(self, states: list[Any]) -> Any:
        """Per-entity states (from :meth:`split_states`) as one batch."""
        ...

    def split_states(self, state: Any) -> list[Any]:
        """A batch state as one state per entity."""
        ...

    def sequence_step(self, rows: np.ndarray, state: Any) -> np.ndarray:
        """P per entity after one more step, ``rows`` (entities x columns, raw features)."""
        ...


def _names_checked(estimator: Any, columns: tuple[str, ...], where: str) -> None:
    names = getattr(estimator, "feature_names_in_", None)
    if names is not None and tuple(map(str, names)) != columns:
        raise ConfigurationError(
            f"{where}: the estimator was fitted on columns {list(names)}, "
            f"its signature says {list(columns)}"
        )


def _drop_names(estimator: Any) -> bool:
    """Drop the fitted column names of a plain estimator or pipeline; False if that is unsafe."""
    steps = getattr(estimator, "steps", None)
    parts = [step for _, step in steps] if steps is not None else [estimator]
    for part in parts:
        if hasattr(part, "transformers_") or hasattr(part, "steps"):
            return False  # selects columns by name: it needs them
    for part in parts:
        if "feature_names_in_" in vars(part):
            del part.feature_names_in_
    return True


def _sklearn_scorer(raw: Any, model: Any, columns: tuple[str, ...], where: str) -> Scorer | None:
    flavor = model.metadata.flavors.get("python_function", {})
    function = getattr(raw, str(flavor.get("predict_fn", "predict")), None)
    if function is None:
        return None
    _names_checked(raw, columns, where)
    if not _drop_names(raw):
        return None
    scorer: Scorer = function
    return scorer


def _xgboost_scorer(raw: Any, columns: tuple[str, ...], where: str) -> Scorer:
    import xgboost as xgb

    booster = raw if isinstance(raw, xgb.Booster) else raw.get_booster()
    names = booster.feature_names
    if names is not None and tuple(names) != columns:
        raise ConfigurationError(
            f"{where}: the booster was trained on columns {list(names)}, "
            f"its signature says {list(columns)}"
        )
    if isinstance(raw, xgb.Booster):
        return lambda matrix: raw.inplace_predict(matrix, validate_features=False)
    scorer: Scorer = raw.predict
    return scorer


def native_scorer(model: Any, columns: tuple[str, ...], where: str) -> tuple[Scorer, str]:
    """The scorer of a loaded ``mlflow.pyfunc`` model and its runtime's name (see above).

    ``where`` names the model version in errors.
    """
    flavors = model.metadata.flavors
    python_model = python_model_of(model)
    if isinstance(python_model, NativeScoring):
        return python_model.native_scorer(columns)
    raw = model.get_raw_model() if "sklearn" in flavors else None
    if raw is not None:
        scorer = _sklearn_scorer(raw, model, columns, where)
        if scorer is not None:
            return scorer, "sklearn"
    if "xgboost" in flavors:
        return _xgboost_scorer(model.get_raw_model(), columns, where), "xgboost"
    return _pandas_scorer(model, columns), "pyfunc"


def _pandas_scorer(model: Any, columns: tuple[str, ...]) -> Scorer:
    import pandas as pd

    names = list(columns)

    def score(matrix: np.ndarray) -> np.ndarray:
        return np.asarray(model.predict(pd.DataFrame(matrix, columns=names)))

    return score
