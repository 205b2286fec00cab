"""How the store's models are logged to MLflow: as code and a configuration, never pickled.

MLflow pickles a ``PythonModel`` object given to ``mlflow.pyfunc.log_model`` (cloudpickle) and
unpickles it at load, which runs whatever the pickle says; MLflow warns at every log and loads
such a model only while ``MLFLOW_ALLOW_PICKLE_DESERIALIZATION`` allows it. The store logs its
models as code instead (MLflow's "models from code"): the file :data:`MODEL_CODE` and the model's
configuration, plain values written as YAML into the version's ``MLmodel`` file beside the native
model's artifact (XGBoost's JSON, the LSTM's ONNX graph, or a scikit-learn estimator in skops'
format, which holds no pickle either). Loading runs that file, which builds the model from its
configuration (:func:`python_model_of_config`).

A configuration names its class (:data:`models.pyfunc.CLASS_KEY`); each class writes its own
(``model_config()``) and reads it back (``from_model_config``). Versions logged pickled by
earlier releases still load: MLflow unpickles them as before.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from typing import Final

from featurestore.errors import ConfigurationError
from models._mlflow import PythonModel
from models.pyfunc import CLASS_KEY

__all__ = ["MODEL_CODE", "python_model_of_config"]

MODEL_CODE: Final = str(Path(__file__).with_name("model_code.py"))
"""The file logged as every model's code (``python_model=`` of ``mlflow.pyfunc.log_model``)."""

_CLASSES: Final = {
    "FeatureModel": "models.pyfunc",
    "SequenceModel": "models.training.lstm",
    "DetectorModel": "models.anomaly.model",
}
"""Each class a configuration may name, and its module: imported only when a model of it loads
(a scorer loading a detector does not import XGBoost, which the LSTM's trainer does)."""


def python_model_of_config(config: Mapping[str, Any]) -> PythonModel:
    """The model a logged configuration describes, unbound (MLflow then loads its artifacts).

    Raises:
        ConfigurationError: the configuration names no known class, or lacks or mistypes a
            value; the message says which.
    """
    name = config.get(CLASS_KEY)
    module = _CLASSES.get(str(name))
    if module is None:
        raise ConfigurationError(
            f"the model's configuration names class {name!r}, not one of {sorted(_CLASSES)}"
        )
    build = getattr(importlib.import_module(module), str(name)).from_model_config
    try:
        model: PythonModel = build(config)
    except KeyError as exc:
        raise ConfigurationError(f"the {name} model's configuration lacks {exc}") from exc
    except (TypeError, ValueError, AttributeError) as exc:
        raise ConfigurationError(f"the {name} model's configuration is not valid: {exc}") from exc
    return model
