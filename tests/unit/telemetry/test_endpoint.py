from __future__ import annotations

import json
import logging
import os
import socket
import urllib.request
from pathlib import Path

import pytest

from featurestore.config import load_settings
from featurestore.telemetry import Telemetry
from featurestore.telemetry import prune_targets
from featurestore.telemetry import serve_metrics


def _settings(tmp_path: Path):
    return load_settings({"FEATURESTORE_METRICS__TARGETS_DIR": str(tmp_path)})


def _scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as reply:
        return str(reply.read().decode())


def test_a_taken_port_falls_back_to_a_free_one_registered_for_discovery(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="featurestore.telemetry")
    settings = _settings(tmp_path)
    telemetry = Telemetry.prometheus()
    assert telemetry.registry is not None
    counter = telemetry.meter_provider.get_meter("t").create_counter("featurestore.test.things")
    counter.add(3, {"kind": "a"})
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        endpoint = serve_metrics(telemetry.registry, settings, "grpc", port, {"x": "y"})
    try:
        assert endpoint.port != port
        samples = [
            line for line in _scrape(endpoint.url).splitlines()
            if line.startswith("featurestore_test_things_total{")
        ]  # fmt: skip
        assert len(samples) == 1 and 'kind="a"' in samples[0] and samples[0].endswith(" 3.0")
        assert endpoint.target_file is not None
        entry = json.loads(endpoint.target_file.read_text())[0]
        assert entry["targets"] == [f"127.0.0.1:{endpoint.port}"]
        assert entry["labels"] == {"job": "grpc", "x": "y", "pid": str(os.getpid())}
        # an expected case beside the stack: said at INFO, with where the metrics are
        said = [(r.levelno, r.getMessage()) for r in caplog.records]
        where = f"port {port} is taken; found via {endpoint.target_file}"
        assert said == [(logging.INFO, f"metrics on {endpoint.url} ({where})")]
        target = endpoint.target_file
    finally:
        endpoint.close()
    assert not target.exists()


def test_the_configured_port_is_not_registered(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    telemetry = Telemetry.prometheus()
    assert telemetry.registry is not None
    endpoint = serve_metrics(telemetry.registry, _settings(tmp_path), "scorer", port, {})
    try:
        assert endpoint.port == port and endpoint.target_file is None
        assert list(tmp_path.iterdir()) == []
    finally:
        endpoint.close()


def test_files_of_dead_processes_are_pruned(tmp_path: Path) -> None:
    dead = tmp_path / "ingest-1-1.json"
    dead.write_text(json.dumps([{"targets": ["127.0.0.1:1"], "labels": {"pid": "999999999"}}]))
    alive = tmp_path / "grpc-2-2.json"
    mine = {"pid": str(os.getpid())}
    alive.write_text(json.dumps([{"targets": ["127.0.0.1:2"], "labels": mine}]))
    assert prune_targets(tmp_path) == [dead]
    assert alive.exists() and not dead.exists()
