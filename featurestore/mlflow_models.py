"""Loading an MLflow model without leaving its artifacts behind, one load at a time.

``mlflow.pyfunc.load_model`` downloads a registered model's artifacts into a new folder of the
system's temporary directory and never removes it: a server leaked one folder (the model's files,
kilobytes to gigabytes) per model version it loaded, for as long as the machine lived. The store's
models read their artifacts when they load (the native model, the ONNX graph), so the folder is
removed as soon as the model is in memory.

A model logged as code (MLflow's "models from code", as the store logs its own: see
:mod:`models.registered`) is loaded by running its code file, which hands the model over through
module globals of MLflow (``mlflow.models.set_model`` and the model configuration it reads): two
such loads at once in one process could each get the other's model. Loads are rare (a server
caches each version it loaded), so they take turns.
"""

from __future__ import annotations

import tempfile
import threading
from typing import Any

__all__ = ["load_pyfunc_model", "python_model_of"]

_LOADING = threading.Lock()


def load_pyfunc_model(uri: str) -> Any:
    """``mlflow.pyfunc.load_model(uri)``, its downloaded artifacts removed once it is loaded.

    MLflow must already point at the tracking server (``mlflow.set_tracking_uri``). Raises what
    MLflow raises.
    """
    import mlflow

    with _LOADING, tempfile.TemporaryDirectory(prefix="featurestore-model-") as folder:
        return mlflow.pyfunc.load_model(uri, dst_path=folder)


def python_model_of(model: Any) -> Any | None:
    """The ``PythonModel`` inside a loaded pyfunc model, logged pickled or as code; else None.

    None for a model of another flavor (an XGBoost or scikit-learn model logged as such).
    """
    flavor = model.metadata.flavors.get("python_function", {})
    if "python_model" not in flavor and "model_code_path" not in flavor:
        return None
    return model.unwrap_python_model()
