"""``featurestore processors status``: every application's status file; unknown names refused."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from featurestore.cli import main
from featurestore.config import load_settings
from processors.options import ProcessorOptions
from processors.status import BatchStatus
from processors.status import write_status


def _batch(batch_id: int, records: int) -> BatchStatus:
    return BatchStatus(
        batch_id=batch_id, finished_at="2026-12-04T16:00:00.000+00:00", records=records,
        rows=records, dead_letters=0, duplicates=0, late=0, seconds={"decode (tasks)": 0.002},
        totals={"records": records},
    )  # fmt: skip


def _run(tmp_path: Path, *args: str) -> tuple[int, str]:
    env = {"FEATURESTORE_DATA_DIR": str(tmp_path), "FEATURESTORE_CONFIG": ""}
    result = CliRunner().invoke(main, ["processors", "status", *args], env=env)
    return result.exit_code, result.output


def test_each_application_of_a_split_topic_is_shown(tmp_path: Path) -> None:
    settings = load_settings({"FEATURESTORE_DATA_DIR": str(tmp_path)})
    extra = {"topic": "trades", "project": "p", "engine": "kafka"}
    for partitions, records in (((0, 2), 40), ((1, 3), 30)):
        options = ProcessorOptions(name="f", partitions=partitions)
        write_status(options.status_path(settings), _batch(7, records), extra)
    code, output = _run(tmp_path, "--name", "f")
    assert code == 0, output
    assert "processor f: not running" in output
    assert "  application f-p0-2:\n    topic trades -> project p" in output
    assert "last batch 7 at 2026-12-04T16:00:00.000+00:00: 40 records" in output
    assert "  application f-p1-3:" in output and ": 30 records" in output
    code, output = _run(tmp_path, "--name", "f", "--json")
    document = json.loads(output)
    assert document["status"] is None and document["running"] is False
    assert sorted(document["applications"]) == ["f-p0-2", "f-p1-3"]
    assert document["applications"]["f-p1-3"]["records"] == 30


def test_one_application_and_no_batch_yet(tmp_path: Path) -> None:
    settings = load_settings({"FEATURESTORE_DATA_DIR": str(tmp_path)})
    write_status(ProcessorOptions(name="f").status_path(settings), _batch(3, 5), {"topic": "t"})
    (tmp_path / "processors" / "g").mkdir()  # started, nothing stored yet
    code, output = _run(tmp_path, "--name", "f")
    assert code == 0 and "\n  topic t -> project None\n  last batch 3" in output, output
    code, output = _run(tmp_path, "--name", "g")
    assert code == 0 and output.endswith("processor g: not running\n  no batch processed yet\n")


def test_a_name_no_processor_ran_under_is_refused_naming_the_known_ones(tmp_path: Path) -> None:
    for name in ("features", "features-quotes"):
        (tmp_path / "processors" / name).mkdir(parents=True)
    code, output = _run(tmp_path, "--name", "feature")
    assert code == 1
    assert "no processor named 'feature' has run" in output
    assert "(known: features, features-quotes)" in output
    code, output = _run(tmp_path / "empty", "--name", "features")
    assert code == 1 and "(known: none)" in output, output
