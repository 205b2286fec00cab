"""MLflow starts as one process, with one environment: at first, and when the supervisor starts
it again."""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from featurestore.config import load_settings
from featurestore.stack.mlflow import MlflowServer
from featurestore.stack.process import ManagedProcess


class _Recording(ManagedProcess):
    """Records the environment of each start instead of starting anything."""

    envs: list[dict[str, str]]
    argvs: list[list[str]]

    def start(self, argv: Sequence[str], *, env: Mapping[str, str] | None = None, **_: Any) -> int:
        self.envs.append(dict(env or {}))
        self.argvs.append(list(argv))
        return 1


def _recorded(tmp_path: Path) -> tuple[MlflowServer, _Recording]:
    server = MlflowServer(load_settings({"FEATURESTORE_DATA_DIR": str(tmp_path)}))
    recording = _Recording(server.process.name, server.process.run_dir, server.process.marker)
    recording.envs = []
    recording.argvs = []
    server.process = recording
    return server, recording


def test_the_supervisor_restarts_mlflow_with_its_launch_environment(tmp_path: Path) -> None:
    server, recording = _recorded(tmp_path)
    server.launch()
    launched = recording.envs[0]
    assert launched["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "false"
    assert launched["MLFLOW_DISABLE_TELEMETRY"] == "true"
    # What the supervisor hands to ManagedProcess.restart (supervisor.py).
    assert server.child_env() == launched


def test_mlflow_is_one_process_of_ours_not_mlflow_servers_two(tmp_path: Path) -> None:
    server, recording = _recorded(tmp_path)
    server.launch()
    argv = recording.argvs[0]
    assert argv[1:3] == ["-m", "featurestore.stack.mlflow_app"]
    assert server.marker() in " ".join(argv)  # how its PID file is told from another process's
    assert argv[argv.index("--port") + 1] == str(server.settings.mlflow.port)


def test_children_do_not_inherit_feasts_prometheus_multiprocess_folder(
    tmp_path: Path, monkeypatch: Any
) -> None:
    # Importing Feast sets both to a temporary folder it deletes when that process exits; a
    # service started by `featurestore run` (which imported Feast, then exited) failed on its
    # next metric. Every component's environment drops them (MLflow's is built on it).
    for name in ("PROMETHEUS_MULTIPROCESS_DIR", "PROMETHEUS_MULTIPROC_DIR"):
        monkeypatch.setenv(name, str(tmp_path / "feast_metrics_gone"))
    server, recording = _recorded(tmp_path)
    server.launch()
    for env in (recording.envs[0], server.child_env()):
        assert "PROMETHEUS_MULTIPROCESS_DIR" not in env
        assert "PROMETHEUS_MULTIPROC_DIR" not in env
