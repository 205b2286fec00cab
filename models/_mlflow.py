"""MLflow, imported once and quietly.

MLflow 3.17 warns (``UserWarning``) about its own type hints while importing ``mlflow.pyfunc``,
and prints advice while logging; the suite turns warnings into errors, so those import-time and
logging-time advisories are silenced here, and nowhere else.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager

with warnings.catch_warnings():
    warnings.simplefilter("ignore", UserWarning)
    import mlflow
    import mlflow.pyfunc
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException
    from mlflow.pyfunc.model import PythonModel

__all__ = ["MlflowClient", "MlflowException", "PythonModel", "mlflow", "quiet"]


@contextmanager
def quiet() -> Iterator[None]:
    """Silence MLflow's advisory ``UserWarning`` s (input examples, serialization notes)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        yield
