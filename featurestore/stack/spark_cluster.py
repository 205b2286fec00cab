"""A standalone Spark cluster on loopback: a master and workers from the pyspark package's jars.

``featurestore cluster up`` starts it for tests and for users who want the processors' work on
executors (``featurestore processors run --master spark://127.0.0.1:17077``). The pip package of
pyspark has ``bin/spark-class`` but no ``sbin`` start scripts, so each daemon is started with
``spark-class <main class>`` in the foreground of its own process group, with a PID file and a
health check like every server of the stack (it is a :class:`Component`). The master's JSON
status page (``/json/``) tells whether the master is alive and which workers registered.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

import requests
from typing_extensions import override

from featurestore.config import Settings
from featurestore.stack.base import Component
from featurestore.stack.base import ComponentStatus
from featurestore.stack.base import wait_healthy

__all__ = ["SparkCluster", "SparkMaster", "SparkWorker", "spark_home"]


def spark_home() -> Path:
    """The pyspark package's folder: its ``bin/spark-class`` and ``jars``."""
    import pyspark

    return Path(pyspark.__file__).resolve().parent


def _master_state(settings: Settings) -> dict[str, Any] | None:
    cfg = settings.spark_cluster
    try:
        response = requests.get(f"http://{cfg.host}:{cfg.master_ui_port}/json/", timeout=2)
        doc = response.json()
    except (requests.RequestException, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


class _SparkDaemon(Component):
    """One Spark daemon started with ``spark-class``; its settings file names it."""

    main_class: str
    start_timeout = 90.0

    @property
    def properties_file(self) -> Path:
        """The daemon's settings file: REST submission off, and the marker of its process."""
        return self.data_dir / "spark-defaults.conf"

    @override
    def marker(self) -> str:
        """Recognise the process by its :attr:`properties_file`, which is the daemon's own."""
        return str(self.properties_file)

    @override
    def prepare(self) -> None:
        """Create the data and log folders and write :attr:`properties_file`."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        (self.data_dir / "logs").mkdir(exist_ok=True)
        # Not running, so no executor of this daemon runs: what a killed one left goes.
        shutil.rmtree(self.local_dir, ignore_errors=True)
        self.properties_file.write_text("".join(f"{k} {v}\n" for k, v in self.properties().items()))

    def properties(self) -> dict[str, str]:
        """What :attr:`properties_file` sets: REST submission off (``--master spark://`` only)."""
        return {"spark.master.rest.enabled": "false"}

    @property
    def local_dir(self) -> Path:
        """Scratch space of the daemon and its executors (``SPARK_LOCAL_DIRS``)."""
        return self.data_dir / "local"

    def _env(self) -> dict[str, str]:
        cfg = self.settings.spark_cluster
        return {
            **self.child_env(),
            "SPARK_HOME": str(spark_home()),
            "SPARK_LOCAL_IP": cfg.host,
            "SPARK_LOG_DIR": str(self.data_dir / "logs"),
            "SPARK_NO_DAEMONIZE": "1",
            # Executors' scratch (their unpacked environment, ~200 MB each with
            # SHIP_ENVIRONMENT) beside the daemon's data, not in /tmp, where a SIGKILLed
            # worker's executors would leave it for good.
            "SPARK_LOCAL_DIRS": str(self.local_dir),
            # Executors run Python tasks with the interpreter of the project's environment.
            "PYSPARK_PYTHON": sys.executable,
        }

    def _spark_class(self, *args: str) -> int:
        command = [str(spark_home() / "bin" / "spark-class"), self.main_class, *args]
        return self.process.start(command, env=self._env())


class SparkMaster(_SparkDaemon):
    """The cluster's master: workers register with it, applications ask it for executors."""

    name = "spark-master"
    main_class = "org.apache.spark.deploy.master.Master"

    @override
    def address(self) -> str:
        """The ``spark://`` URL that workers and applications connect to."""
        return self.settings.spark_cluster.master_url

    @override
    def launch(self) -> int:
        """Run the master on its RPC and web UI ports."""
        cfg = self.settings.spark_cluster
        return self._spark_class(
            "--host", cfg.host, "--port", str(cfg.master_port),
            "--webui-port", str(cfg.master_ui_port),
            "--properties-file", str(self.properties_file),
        )  # fmt: skip

    @override
    def healthy(self) -> bool:
        """The master's ``/json/`` status page says ALIVE."""
        state = _master_state(self.settings)
        return state is not None and state.get("status") == "ALIVE"


class SparkWorker(_SparkDaemon):
    """Worker ``index`` (from 0): offers its cores and memory to the master's applications."""

    main_class = "org.apache.spark.deploy.worker.Worker"

    def __init__(self, settings: Settings, index: int) -> None:
        """Worker ``index``: the component ``spark-worker-<index>``, its web UI on its own port."""
        self.index = index
        self.name = f"spark-worker-{index}"
        super().__init__(settings)

    @property
    def ui_port(self) -> int:
        """Its web UI's port: ``worker_ui_port + index``.

        The master lists each worker by that address: :meth:`healthy` finds this one by it.
        """
        return self.settings.spark_cluster.worker_ui_port + self.index

    @override
    def address(self) -> str:
        """Its web UI's URL."""
        return f"http://{self.settings.spark_cluster.host}:{self.ui_port}"

    @override
    def properties(self) -> dict[str, str]:
        """And the folders of applications that ended over an hour ago removed, every 10 min.

        Each executor's folder holds its shipped environment unpacked (~250 MB) and its logs:
        kept for good, every processor start on the cluster added some to the disk.
        """
        return {
            **super().properties(),
            "spark.worker.cleanup.enabled": "true",
            "spark.worker.cleanup.interval": "600",
            "spark.worker.cleanup.appDataTtl": "3600",
        }

    @override
    def launch(self) -> int:
        """Run the worker with the configured cores and memory; it registers with the master."""
        cfg = self.settings.spark_cluster
        return self._spark_class(
            "--host", cfg.host, "--cores", str(cfg.worker_cores),
            "--memory", cfg.worker_memory, "--webui-port", str(self.ui_port),
            "--work-dir", str(self.data_dir / "work"),
            "--properties-file", str(self.properties_file),
            cfg.master_url,
        )  # fmt: skip

    @override
    def healthy(self) -> bool:
        """Registered with the master and alive there."""
        state = _master_state(self.settings)
        if state is None:
            return False
        suffix = f":{self.ui_port}"
        return any(
            w.get("state") == "ALIVE" and str(w.get("webuiaddress", "")).endswith(suffix)
            for w in state.get("workers", [])
        )


class SparkCluster:
    """The master and the workers, started and stopped together."""

    def __init__(self, settings: Settings) -> None:
        """The master and the ``spark_cluster.workers`` workers of ``settings``; nothing starts."""
        self.settings = settings
        self.master = SparkMaster(settings)
        workers = settings.spark_cluster.workers
        self.workers = [SparkWorker(settings, k) for k in range(workers)]

    @property
    def components(self) -> list[Component]:
        """In start order."""
        return [self.master, *self.workers]

    def up(self) -> list[str]:
        """Start what is not running and wait until every worker has registered.

        Returns:
            The names of the daemons started.

        Raises:
            BackendUnavailableError: a daemon did not come up (its log's last lines say why);
                the daemons this call started are stopped again, their logs kept.
        """
        started: list[_SparkDaemon] = []
        try:
            for group in ([self.master], self.workers):
                launched = []
                for daemon in group:
                    with daemon.process.exclusive():
                        if daemon.process.pid() is not None:
                            continue
                        daemon.prepare()
                        daemon.launch()
                    launched.append(daemon)
                    started.append(daemon)
                for daemon in launched:
                    wait_healthy(daemon)
        except BaseException:
            for begun in reversed(started):
                begun.stop()
            raise
        return [d.name for d in started]

    def down(self) -> list[str]:
        """Stop the workers, then the master; returns those that were running."""
        return [d.name for d in reversed(self.components) if d.stop()]

    def status(self) -> list[ComponentStatus]:
        """Each daemon's state."""
        return [d.status() for d in self.components]
