"""MLflow, imported once and quietly.

MLflow 3.17 warns (``UserWarning``) about its own type hints while importing ``mlflow.pyfunc``,
and prints advice while logging; the suite turns warnings into errors, so those import-time and
logging-time advisories are silenced here, and nowhere else. And MLflow's first REST call would
import all of Feast through Feast's header plugin: it is left out here
(:mod:`featurestore.mlflow_plugins`).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager

from featurestore.mlflow_plugins import skip_feast_header_provider

with warnings.catch_warnings():
    warnings.simplefilter("ignore", UserWarning)
    import mlflow
    import mlflow.pyfunc
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException
    from mlflow.pyfunc.model import PythonModel

skip_feast_header_provider()

__all__ = ["MlflowClient", "MlflowException", "PythonModel", "mlflow", "quiet"]


@contextmanager
def quiet() -> Iterator[None]:
    """Silence MLflow's advisory ``UserWarning`` s (input examples, serialization notes)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        yield
