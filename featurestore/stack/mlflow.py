"""MLflow tracking server with a sqlite backend and a local artifact folder."""

from __future__ import annotations

from typing_extensions import override

from featurestore.stack.base import OwnProcess
from featurestore.stack.base import answers_ok

__all__ = ["MlflowServer"]


class MlflowServer(OwnProcess):
    """The model registry and experiment tracking server."""

    name = "mlflow"
    module = "featurestore.stack.mlflow_app"
    """One process, not ``mlflow server``'s two."""
    start_timeout = 300.0  # imports and first-start migrations; minutes on a loaded 2-core box

    @override
    def marker(self) -> str:
        """Recognise the process by its sqlite file, which is this stack's own."""
        return str(self.data_dir / "mlflow.db")

    @override
    def address(self) -> str:
        """The tracking URI clients use."""
        return self.settings.mlflow.tracking_uri

    @override
    def prepare(self) -> None:
        """Create the artifact folder; the server creates its sqlite database at its first start."""
        (self.data_dir / "artifacts").mkdir(parents=True, exist_ok=True)

    @override
    def arguments(self) -> list[str]:
        """Its address, sqlite database and artifact folder."""
        cfg = self.settings.mlflow
        return [
            "--host", cfg.host,
            "--port", str(cfg.port),
            "--backend-store-uri", f"sqlite:///{self.data_dir / 'mlflow.db'}",
            "--artifacts-destination", str(self.data_dir / "artifacts"),
        ]  # fmt: skip

    @override
    def child_env(self) -> dict[str, str]:
        """The server's environment, at its first start and at every restart by the supervisor.

        MLflow 3's server forks seven huey job consumers (GenAI evaluation jobs, which the store
        does not use) that poll all the time: ~5 % of a core each, idle; and it sends usage
        telemetry to its makers by default (each attempt waiting up to a second where nothing
        outside is reachable). Both are off. Here and not in :meth:`launch` alone: the
        supervisor starts a dead server again with this environment (in a chaos run, MLflow
        restarted with the job consumers took 7 minutes to serve at load 25).
        """
        return {
            **super().child_env(),
            "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
            "MLFLOW_DISABLE_TELEMETRY": "true",
        }

    @override
    def healthy(self) -> bool:
        """``GET /health`` answers 200."""
        return answers_ok(f"{self.address()}/health")
