"""``featurestore export`` end to end: a Parquet file equal to the Python API, and clear errors."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from click.testing import Result

from featurestore.cli import main
from featurestore.offline import LabelSpec
from featurestore.offline import PostgresOfflineStore
from featurestore.offline import TrainingRequest
from featurestore.offline.labels import add_forward_labels
from tests.integration.offline.pit_data import OfflineData
from tests.integration.offline.pit_data import entity_rows

pytestmark = pytest.mark.integration


def _export(data: OfflineData, *args: str) -> Result:
    return CliRunner().invoke(
        main, ["export", "--project", data.definitions.project, *args], catch_exceptions=False
    )


def test_export_with_labels_equals_the_python_api(
    pk_offline_data: OfflineData, tmp_path: Path
) -> None:
    entities = entity_rows(500, seed=21)
    source, out = tmp_path / "rows.parquet", tmp_path / "train.parquet"
    entities.drop(columns=["label"]).to_parquet(source)
    result = _export(
        pk_offline_data,
        "--entities", str(source),
        "--feature-service", "direction_features_v1",
        "--out", str(out),
        "--label-horizon", "5m",
        "--label-kind", "direction",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "wrote 500 rows" in result.output
    written = pq.read_table(out).to_pandas()
    assert list(written.columns[-2:]) == ["close_1m", "direction"]
    spec = LabelSpec(horizon=pd.Timedelta(minutes=5).to_pytimedelta(), kind="direction")
    with PostgresOfflineStore(
        pk_offline_data.settings.postgres.dsn, pk_offline_data.definitions
    ) as store:
        direct = store.to_pandas(
            entities.drop(columns=["label"]),
            TrainingRequest(feature_service="direction_features_v1", labels=spec),
        )
    pd.testing.assert_frame_equal(written, direct)
    expected = add_forward_labels(entities, pk_offline_data.rows["bars_1m"], spec)
    pd.testing.assert_series_equal(
        written["direction"].astype("Int8"), expected["direction"], check_names=False
    )
    assert written["direction"].notna().any()


def test_features_given_several_times_are_all_exported(
    pk_offline_data: OfflineData, tmp_path: Path
) -> None:
    """``--features a --features b,c`` exports a, b and c (the last option alone, before)."""
    source, out = tmp_path / "rows.parquet", tmp_path / "three.parquet"
    entity_rows(20, seed=23).drop(columns=["label"]).to_parquet(source)
    result = _export(
        pk_offline_data,
        "--entities", str(source), "--out", str(out),
        "--features", "bars_1m:close", "--features", "bars_1m:open,bars_1m:volume",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert list(pq.read_table(out).column_names[-3:]) == ["close", "open", "volume"]


def test_naive_timestamps_are_utc_with_a_warning_or_refused(
    pk_offline_data: OfflineData, tmp_path: Path
) -> None:
    entities = entity_rows(50, seed=22)
    source = tmp_path / "rows.csv"
    entities.assign(
        event_timestamp=entities.event_timestamp.dt.strftime("%Y-%m-%d %H:%M:%S.%f")
    ).to_csv(source, index=False)
    args = ["--entities", str(source), "--features", "bars_1m:close"]
    result = _export(pk_offline_data, *args, "--out", str(tmp_path / "a.parquet"))
    assert result.exit_code == 0, result.output
    assert "without a timezone; they are taken to be UTC" in result.stderr
    strict = _export(
        pk_offline_data, *args, "--out", str(tmp_path / "b.parquet"), "--strict-timestamps"
    )
    assert strict.exit_code == 2
    assert "export failed (event_timestamp)" in strict.stderr
    assert "timestamps without a timezone" in strict.stderr
    assert not (tmp_path / "b.parquet").exists()


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--features", "bars_1m:nope"], 1, "feature view 'bars_1m' has no feature 'nope'"),
        (["--features", "bars_1m:close", "--timestamp-column", "ts"], 2, "no column 'ts'"),
        (["--features", "bars_1m:close", "--label-horizon", "soon"], 2, "not a duration"),
        (["--features", "bars_1m:close", "--label-horizon", "0s"], 2, "horizon must be positive"),
        ([], 2, "give either feature references or a feature service"),
    ],
)
def test_errors_are_one_line_messages(
    pk_offline_data: OfflineData, tmp_path: Path, args: list[str], code: int, message: str
) -> None:
    source = tmp_path / "rows.parquet"
    entity_rows(5, seed=23).to_parquet(source)
    result = _export(
        pk_offline_data, "--entities", str(source), "--out", str(tmp_path / "o.parquet"), *args
    )
    assert result.exit_code == code, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "o.parquet").exists()


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_empty_entity_files_are_refused(
    pk_offline_data: OfflineData, tmp_path: Path, suffix: str
) -> None:
    source = tmp_path / f"rows{suffix}"
    empty = entity_rows(5, seed=24).iloc[:0]
    if suffix == ".csv":
        empty.to_csv(source, index=False)
    else:
        empty.to_parquet(source)
    result = _export(
        pk_offline_data,
        "--entities", str(source),
        "--features", "bars_1m:close",
        "--out", str(tmp_path / "o.parquet"),
    )  # fmt: skip
    assert result.exit_code == 2
    assert "export failed (entities): no entity rows given" in result.stderr
