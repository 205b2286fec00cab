"""pyspark's result socket is the one ResourceWarning a Spark job leaves, and only it is ignored.

``collect()``, ``toArrow()`` and ``toPandas()`` read their result from a loopback socket that
pyspark (``pyspark/util.py``, ``_load_from_socket``) leaves to the garbage collector and never
hands to the caller, so no code of ours can close it; pyproject.toml's ``filterwarnings`` ignores
that warning by its message and the module it points at (``socket``). This test keeps the entry
honest: it fails when the entry no longer matches what pyspark leaks, or when pyspark no longer
leaks (then delete the entry). Calls into the JVM from another thread, and stopping the session,
leave nothing.
"""

from __future__ import annotations

import json
import textwrap
import tomllib
from pathlib import Path

import pytest

from tests.integration.processors.spark_child import REPO_ROOT
from tests.integration.processors.spark_child import run_driver

pytestmark = pytest.mark.integration

_DRIVER = textwrap.dedent(
    """
    import gc, json, sys, threading, warnings
    from tests.integration.processors.spark_child import local_session

    message, module = sys.argv[1:]
    spark = local_session()

    def leaks(ignored: bool) -> list[str]:
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            if ignored:
                warnings.filterwarnings("ignore", message, ResourceWarning, module)
            spark.range(3).collect()
            spark.range(3).toArrow()
            spark.sparkContext.parallelize(range(4), 2).collect()
            thread = threading.Thread(target=lambda: spark.range(3).count())
            thread.start()
            thread.join()
            if ignored:
                spark.stop()
            gc.collect()
        return [str(w.message) for w in seen if issubclass(w.category, ResourceWarning)]

    print(json.dumps({"shown": leaks(False), "with the entry": leaks(True)}))
    """
)


def _ignored_resource_warning() -> tuple[str, str]:
    """The message and module regexes of pyproject.toml's ``ignore`` entry for ResourceWarning."""
    config = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    entries = config["tool"]["pytest"]["ini_options"]["filterwarnings"]
    [entry] = [e for e in entries if e.startswith("ignore:") and ":ResourceWarning:" in e]
    _, message, _, module = entry.split(":")
    return message, module


@pytest.mark.timeout(600)  # a Spark session's start: 1-3 min on a loaded machine
def test_only_pyspark_result_sockets_are_ignored(tmp_path: Path) -> None:
    message, module = _ignored_resource_warning()
    done = run_driver(_DRIVER, message, module, cwd=tmp_path, timeout_s=540)
    assert done.returncode == 0, done.stderr[-3000:]
    leaks = json.loads(done.stdout.strip().splitlines()[-1])
    # One per result read: none, and pyspark closes its socket now (the entry can go).
    assert len(leaks["shown"]) == 3, leaks
    assert leaks["with the entry"] == []
