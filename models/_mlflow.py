"""MLflow, imported once and quietly.

MLflow 3.17 warns (``UserWarning``) about its own type hints while importing ``mlflow.pyfunc``,
and prints advice while logging; the suite turns warnings into errors, so those import-time and
logging-time advisories are silenced here, and nowhere else. And MLflow's first REST call would
import all of Feast through Feast's header plugin: it is left out here
(:mod:`featurestore.mlflow_plugins`).
"""

from __future__ import annotations

import io
import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from contextlib import redirect_stderr
from contextlib import redirect_stdout

from featurestore.mlflow_plugins import skip_feast_header_provider

with warnings.catch_warnings():
    warnings.simplefilter("ignore", UserWarning)
    import mlflow
    import mlflow.pyfunc
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException
    from mlflow.pyfunc.model import PythonModel

skip_feast_header_provider()

__all__ = ["MlflowClient", "MlflowException", "PythonModel", "held_back_output", "mlflow", "quiet"]


@contextmanager
def quiet() -> Iterator[None]:
    """Silence MLflow's advisory ``UserWarning`` s (input examples, serialization notes)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        yield


@contextmanager
def held_back_output(buffer: io.StringIO) -> Iterator[None]:
    """Hold back what MLflow prints while models are logged and registered.

    Its run links, "Successfully registered model" and INFO lines (about 10 per model) go to
    ``buffer`` instead of the terminal, for a caller that reports each model in a line of its
    own and shows ``buffer`` when something fails. MLflow's warnings and errors still show.
    """
    logger = logging.getLogger("mlflow")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        with redirect_stdout(buffer), redirect_stderr(buffer):
            yield
    finally:
        logger.setLevel(level)
