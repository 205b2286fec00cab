"""``featurestore train``'s options that are refused before any server is contacted."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from featurestore.cli.train import train


def test_data_source_file_needs_a_file_and_a_file_needs_that_source(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(train, ["--model", "rf", "--data-source", "file"])
    assert result.exit_code == 2 and "--data-file" in result.output
    data = tmp_path / "set.parquet"
    data.write_bytes(b"")
    result = runner.invoke(train, ["--model", "rf", "--data-file", str(data)])
    assert result.exit_code == 2 and "--data-source file" in result.output


def test_unknown_kind_and_too_short_sequences_are_refused() -> None:
    runner = CliRunner()
    result = runner.invoke(train, ["--model", "gpt"])
    assert result.exit_code == 2 and "gpt" in result.output
    result = runner.invoke(train, ["--model", "lstm", "--seq-len", "1"])
    assert result.exit_code == 2 and "--seq-len" in result.output


def test_a_file_of_an_export_is_a_training_set_and_a_bad_one_is_named(tmp_path: Path) -> None:
    from datetime import UTC
    from datetime import datetime

    import pandas as pd
    import pytest

    from featurestore.errors import ValidationError
    from models.data import DataWindow
    from models.data import read_dataset

    t0 = pd.Timestamp("2024-01-02 14:30", tz="UTC")
    frame = pd.DataFrame(
        {
            "symbol": ["A", "B", "A"],
            "event_timestamp": [t0, t0, t0 + pd.Timedelta(minutes=1)],
            "rolling_1m__volume_ratio": [1.0, 2.0, 3.0],
            "forward_return": [0.01, -0.02, 0.0],
        }
    )
    path = tmp_path / "set.parquet"
    frame.to_parquet(path)
    window = DataWindow(symbols=("A",), end=datetime(2024, 1, 2, 14, 30, tzinfo=UTC))
    data = read_dataset(path, "direction_features_v1", window)
    assert data.feature_columns == ("rolling_1m__volume_ratio",)
    assert data.frame["direction"].tolist() == [1.0]
    frame.drop(columns="forward_return").to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(ValidationError, match="forward_return"):
        read_dataset(tmp_path / "bad.csv", "direction_features_v1", DataWindow())
