"""The registered form of every tabular model: an MLflow ``PythonModel`` around the native one.

Contract (what Predict and the anomaly scorer rely on):

* ``mlflow.pyfunc.load_model("models:/NAME@ALIAS")`` loads it;
* its signature's input columns are the raw features, named ``view__feature``, all ``double``
  (send float64; a missing feature is NaN);
* ``predict(frame)`` returns a 1-D float64 array, one score per row: for a binary classifier the
  probability of the positive class, for a multi-class one the probability of
  ``positive_class``, for the anomaly model a score where higher is more anomalous, for a
  regression (``kind="forward_return"``) the predicted value.

Predict does not go through ``predict(frame)``: :meth:`FeatureModel.native_scorer` gives it the
same computation on a float64 matrix (the transform as NumPy array operations prepared once, the
native model called on the array), so no DataFrame is built per call.

The feature transform (:func:`models.inputs.model_inputs`) runs inside ``predict``, so a caller
never prepares inputs differently from training. The native model is an artifact that can be
used on its own: XGBoost's JSON, or the scikit-learn estimator in skops' format, which holds no
pickle and loads only the types it is told to trust (:data:`SKLEARN_TRUSTED`).
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
from dataclasses import asdict
from dataclasses import dataclass
from typing import TYPE_CHECKING
from typing import Any
from typing import Generic
from typing import Literal
from typing import TypeVar
from typing import get_args

import joblib  # type: ignore[import-untyped]
import numpy as np
import pandas as pd

from featurestore.errors import ConfigurationError
from models._mlflow import PythonModel
from models.forest import StackedForest
from models.forest import stacked_booster
from models.inputs import InputTransform
from models.inputs import input_names
from models.inputs import model_inputs

__all__ = [
    "CLASS_KEY",
    "NATIVE_ARTIFACT",
    "SKLEARN_TRUSTED",
    "ConfiguredModel",
    "FeatureModel",
    "ModelConfig",
]

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

C = TypeVar("C", bound="DataclassInstance")

NATIVE_ARTIFACT = "native"
"""The artifact key (and file stem) of the native model."""
SKLEARN_TRUSTED = ("sklearn.tree._tree.Tree",)
"""The types a scikit-learn artifact may hold beyond skops' own trusted set (estimators, NumPy
arrays): the trees of the forests the store trains (``RandomForestRegressor``,
``IsolationForest``)."""
CLASS_KEY = "class"
"""The key of a logged model's configuration that names its ``PythonModel`` class
(:mod:`models.registered`)."""

Flavor = Literal["xgboost", "sklearn", "onnx"]
_STACKED_ROWS = 128
"""Up to this many rows XGBoost models score through :class:`models.forest.StackedBooster`."""


@dataclass(frozen=True)
class ModelConfig:
    """What the wrapper needs besides the native model."""

    kind: str
    """``anomaly``, ``direction``, ``regime`` or ``forward_return`` (a regression)."""
    flavor: Flavor
    feature_columns: tuple[str, ...]
    positive_class: int | None = None
    """Column of ``predict_proba`` returned (classifiers)."""
    fill_values: Mapping[str, float] | None = None
    """Per model input, the value a NaN becomes (models that cannot take NaN)."""


class ConfiguredModel(PythonModel, Generic[C]):
    """A ``PythonModel`` that MLflow logs as its configuration, ``config`` (a dataclass).

    Besides its artifacts, the configuration is all a logged version holds of it
    (:mod:`models.registered`); each subclass reads it back with ``from_model_config``.
    """

    config: C

    def model_config(self) -> dict[str, Any]:
        """The configuration as MLflow logs it, naming the class.

        YAML-ready values: tuples as lists, mappings as dicts, NumPy scalars as Python numbers.
        """
        return {CLASS_KEY: type(self).__name__, **_plain(asdict(self.config))}


class FeatureModel(ConfiguredModel[ModelConfig]):
    """Raw ``view__feature`` columns in, one score per row out."""

    def __init__(self, config: ModelConfig) -> None:
        """Unbound: :meth:`load_context` (MLflow) or :meth:`bind` gives it its native model."""
        self.config = config
        self._model: Any = None

    @classmethod
    def from_model_config(cls, config: Mapping[str, Any]) -> FeatureModel:
        """The unbound model that :meth:`model_config` describes (KeyError: a key is missing)."""
        flavor = config["flavor"]
        if flavor not in get_args(Flavor):
            raise ValueError(f"flavor {flavor!r} is not one of {list(get_args(Flavor))}")
        fill = config.get("fill_values")
        return cls(
            ModelConfig(
                kind=str(config["kind"]),
                flavor=flavor,
                feature_columns=tuple(config["feature_columns"]),
                positive_class=config.get("positive_class"),
                fill_values=None if fill is None else {str(k): float(v) for k, v in fill.items()},
            )
        )

    def load_context(self, context: Any) -> None:
        """Load the native model from its artifact."""
        self._model = load_native(self.config.flavor, context.artifacts[NATIVE_ARTIFACT])

    def bind(self, native: Any) -> FeatureModel:
        """Use an in-memory native model (training evaluates through the same code path)."""
        self._model = native
        return self

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> np.ndarray:
        """One float64 score per row of ``model_input``."""
        return score(self._model, self.config, model_input)

    def native_scorer(
        self, columns: tuple[str, ...]
    ) -> tuple[Callable[[np.ndarray], np.ndarray], str]:
        """Scores of a raw feature matrix whose columns are ``columns`` (Predict's hot path).

        ``columns`` are the signature's, which may list the model's features in another order
        than it reads them (``predict`` selects them by name): the matrix is then reordered.
        """
        own = tuple(self.config.feature_columns)
        if sorted(columns) != sorted(own) or len(set(columns)) != len(columns):
            raise ConfigurationError(f"the model reads {list(own)}, not {list(columns)}")
        scorer = matrix_scorer(self._model, self.config)
        if tuple(columns) == own:
            return scorer, self.config.flavor
        order = np.asarray([list(columns).index(c) for c in own], dtype=np.intp)
        return (lambda raw: scorer(raw[:, order])), self.config.flavor


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _fill(config: ModelConfig) -> np.ndarray | None:
    if config.fill_values is None:
        return None
    names = input_names(config.feature_columns)
    return np.asarray([config.fill_values.get(n, np.nan) for n in names], dtype="float64")


def matrix_scorer(native: Any, config: ModelConfig) -> Callable[[np.ndarray], np.ndarray]:
    """The wrapper's ``predict`` as a function of the raw feature matrix (the config's columns)."""
    transform = InputTransform.of(config.feature_columns)
    fill = _fill(config)
    column = 1 if config.positive_class is None else config.positive_class

    def inputs(raw: np.ndarray) -> np.ndarray:
        x = transform(raw)
        if fill is not None:
            x = np.where(np.isnan(x), fill, x)
        return x

    if config.kind == "anomaly":
        return lambda raw: np.asarray(-native.score_samples(inputs(raw)), dtype="float64")
    if config.kind == "forward_return":
        if hasattr(native, "estimators_") and hasattr(native.estimators_[0], "tree_"):
            forest = StackedForest(native)  # every tree walked at once (models/forest.py)
            return lambda raw: forest.predict(inputs(raw))
        return lambda raw: np.asarray(native.predict(inputs(raw)), dtype="float64")
    if config.flavor == "xgboost":
        # XGBoost's in-place prediction on the array, over the trees early stopping kept (what
        # predict_proba uses); a binary model gives P(1) directly.
        booster = native.get_booster()
        booster.set_param({"nthread": 1})  # a call scores a few rows: no thread pool to wake
        trees = (0, int(native.best_iteration) + 1) if _has_best(native) else (0, 0)
        # Predict's few rows: the trees walked as arrays (models/forest.py), without XGBoost's
        # fixed cost per call; a batch as large as the walk's own cost: XGBoost's predict.
        stacked = stacked_booster(booster, trees)

        def xgb(raw: np.ndarray) -> np.ndarray:
            x = inputs(raw)
            if stacked is not None and len(x) <= _STACKED_ROWS:
                out = stacked.predict(x)
            else:
                out = np.asarray(booster.inplace_predict(x, iteration_range=trees))
            if out.ndim == 1:
                return out.astype("float64") if column == 1 else 1.0 - out.astype("float64")
            return out[:, column].astype("float64")

        return xgb
    return lambda raw: np.asarray(native.predict_proba(inputs(raw))[:, column], dtype="float64")


def _has_best(native: Any) -> bool:
    try:
        return native.best_iteration is not None
    except AttributeError:  # trained without early stopping
        return False


def score(native: Any, config: ModelConfig, frame: pd.DataFrame) -> np.ndarray:
    """The wrapper's ``predict`` on a native model, usable without MLflow."""
    missing = [c for c in config.feature_columns if c not in frame.columns]
    if missing:
        model_inputs(frame, config.feature_columns)  # raises, naming the first missing column
    raw = frame[list(config.feature_columns)].apply(pd.to_numeric, errors="coerce")
    return matrix_scorer(native, config)(raw.to_numpy(dtype="float64"))


def save_native(flavor: Flavor, native: Any, directory: str) -> str:
    """Write the native model under ``directory``; returns the file's path."""
    if flavor == "xgboost":
        path = f"{directory}/{NATIVE_ARTIFACT}.json"
        native.save_model(path)
    else:
        import skops.io  # type: ignore[import-untyped]  # ~5 s: it lists every scikit-learn type

        path = f"{directory}/{NATIVE_ARTIFACT}.skops"
        skops.io.dump(native, path)
    return path


def load_native(flavor: Flavor, path: str) -> Any:
    """Read a native model written by :func:`save_native`.

    Raises:
        ConfigurationError: a scikit-learn file holds a type outside :data:`SKLEARN_TRUSTED`
            and skops' own trusted set (named in the message).
    """
    if flavor == "xgboost":
        import xgboost

        model = xgboost.XGBClassifier()
        model.load_model(path)
        return model
    if path.endswith(".joblib"):  # a version logged before the skops format: a pickle
        return joblib.load(path)
    import skops.io
    import skops.io.exceptions  # type: ignore[import-untyped]

    try:
        return skops.io.load(path, trusted=list(SKLEARN_TRUSTED))
    except skops.io.exceptions.UntrustedTypesFoundException as exc:
        raise ConfigurationError(f"the model's scikit-learn file is refused: {exc}") from exc
