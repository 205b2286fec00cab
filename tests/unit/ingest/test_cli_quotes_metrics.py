from __future__ import annotations

import gzip
from pathlib import Path

from click.testing import CliRunner

from featurestore.cli import main


def test_one_topic_cannot_take_two_kinds(tmp_path: Path) -> None:
    paths = []
    for name, line in (
        ("20131007_ibm_Quote_Tick.csv.gz", "34200000,1817000,200,1818000,300,P,1,0"),
        ("20131007_ibm_Trade_Tick.csv.gz", "34200000,1817000,200,P,0,0"),
    ):
        path = tmp_path / name
        with gzip.open(path, "wt") as handle:
            handle.write(line + "\n")
        paths.append(str(path))
    result = CliRunner().invoke(main, ["ingest", "files", *paths, "--topic", "x"])
    assert result.exit_code == 2
    assert "--topic names one topic, but the input holds quote and trade records" in result.output


def test_metrics_names_a_missing_column_before_connecting(tmp_path: Path) -> None:
    path = tmp_path / "cpu.csv"
    path.write_text("host,ts,cpu\nweb-1,2024-01-02T14:30:00Z,0.5\n")
    args = ["ingest", "metrics", str(path), "--entity-column", "host", "--time-column", "ts"]
    result = CliRunner().invoke(main, [*args, "--value-column", "load"])
    assert result.exit_code == 1
    assert "cpu.csv: no column 'load' (the file has: host, ts, cpu)" in result.output
    result = CliRunner().invoke(
        main, [*args, "--value-column", "cpu", "--tag-columns", "region, rack"]
    )
    assert result.exit_code == 1
    assert "no column 'region'" in result.output
    result = CliRunner().invoke(main, [*args, "--value-column", "cpu", "--name", " "])
    assert result.exit_code == 2
    assert "--name must not be empty" in result.output


def test_synthetic_metrics_as_fast_as_possible_needs_a_bound() -> None:
    result = CliRunner().invoke(main, ["ingest", "synthetic-metrics", "--fast"])
    assert result.exit_code == 2
    assert "--fast needs a bound" in result.output


def test_synthetic_metrics_names_each_metric_once() -> None:
    args = ["ingest", "synthetic-metrics", "--count", "10", "--fast"]
    result = CliRunner().invoke(main, [*args, "--name", "cpu", "--name", "cpu"])
    assert result.exit_code == 2
    assert "a name is given twice in ('cpu', 'cpu')" in result.output
    result = CliRunner().invoke(main, [*args, "--name", "cpu", "--name", " "])
    assert result.exit_code == 2
    assert "--name must not be empty" in result.output
