"""The local Spark daemons' settings files."""

from __future__ import annotations

from pathlib import Path

from featurestore.config import load_settings
from featurestore.stack.spark_cluster import SparkMaster
from featurestore.stack.spark_cluster import SparkWorker


def _properties(path: Path) -> dict[str, str]:
    return dict(line.split(" ", 1) for line in path.read_text().splitlines())


def test_workers_remove_the_folders_of_ended_applications(tmp_path: Path) -> None:
    settings = load_settings({"FEATURESTORE_DATA_DIR": str(tmp_path)})
    worker, master = SparkWorker(settings, 0), SparkMaster(settings)
    for daemon in (worker, master):
        daemon.prepare()
    got = _properties(worker.properties_file)
    assert got["spark.worker.cleanup.enabled"] == "true"
    assert int(got["spark.worker.cleanup.appDataTtl"]) <= 3600, "an hour of logs at the most"
    assert got["spark.master.rest.enabled"] == "false"
    assert _properties(master.properties_file) == {"spark.master.rest.enabled": "false"}
