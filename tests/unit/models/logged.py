"""Loading a saved model as a host that refuses pickled Python objects would."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from featurestore.mlflow_models import load_pyfunc_model


def load_without_pickles(path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The model saved at ``path``, loaded with MLflow's pickle loading off.

    Also checks that the saved model holds no pickled wrapper (MLflow's ``python_model.pkl``).
    """
    assert not (path / "python_model.pkl").exists()
    monkeypatch.setenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "false")
    return load_pyfunc_model(str(path))
