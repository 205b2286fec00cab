"""Spark drivers run in a child process, for tests that would otherwise spoil this one's session.

A session started in the pytest process is the one every later Spark test of it gets from
``getOrCreate`` (with the first test's configuration), and one stopped there is stopped for all.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[3]


def local_session() -> Any:
    """A one-core local SparkSession bound to loopback, without UI (called in the child)."""
    from pyspark.sql import SparkSession

    return (
        SparkSession.builder.master("local[1]")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .getOrCreate()
    )


def run_driver(
    script: str, *args: str, cwd: Path, timeout_s: float
) -> subprocess.CompletedProcess[str]:
    """Run ``script`` (Python source) with ``args`` in a child with the repository importable."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "SPARK_LOCAL_IP": "127.0.0.1"}
    env.setdefault("PYSPARK_PYTHON", sys.executable)
    return subprocess.run(
        [sys.executable, "-c", script, *args],
        env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout_s,
    )  # fmt: skip
