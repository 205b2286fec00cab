"""`make run`'s first models: what MLflow prints while logging them is held back, not shown."""

from __future__ import annotations

import io
import logging
import sys

import pytest

from models._mlflow import held_back_output


def test_mlflow_prints_and_info_lines_are_held_back_and_its_warnings_shown(
    capsys: pytest.CaptureFixture[str],
) -> None:
    logger = logging.getLogger("mlflow.store.model_registry.abstract_store")
    before = logging.getLogger("mlflow").level
    buffer = io.StringIO()
    with held_back_output(buffer):
        print("🏃 View run direction at: http://127.0.0.1:15000/#/experiments/1/runs/x")
        print("Successfully registered model 'featurestore-direction'.", file=sys.stderr)
        logger.info("Waiting up to 300 seconds for model version to finish creation.")
        assert not logging.getLogger("mlflow").isEnabledFor(logging.INFO)
        assert logging.getLogger("mlflow").isEnabledFor(logging.WARNING)
    shown = capsys.readouterr()
    assert shown.out == "" and shown.err == ""
    assert "View run direction" in buffer.getvalue()
    assert "Successfully registered model" in buffer.getvalue()
    assert logging.getLogger("mlflow").level == before
    print("after")
    assert capsys.readouterr().out == "after\n"
