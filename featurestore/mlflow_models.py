"""Loading an MLflow model without leaving its artifacts behind.

``mlflow.pyfunc.load_model`` downloads a registered model's artifacts into a new folder of the
system's temporary directory and never removes it: a server leaked one folder (the model's files,
kilobytes to gigabytes) per model version it loaded, for as long as the machine lived. The store's
models read their artifacts when they load (the native model, the ONNX graph), so the folder is
removed as soon as the model is in memory.
"""

from __future__ import annotations

import tempfile
from typing import Any

__all__ = ["load_pyfunc_model"]


def load_pyfunc_model(uri: str) -> Any:
    """``mlflow.pyfunc.load_model(uri)``, its downloaded artifacts removed once it is loaded.

    MLflow must already point at the tracking server (``mlflow.set_tracking_uri``). Raises what
    MLflow raises.
    """
    import mlflow

    with tempfile.TemporaryDirectory(prefix="featurestore-model-") as folder:
        return mlflow.pyfunc.load_model(uri, dst_path=folder)
