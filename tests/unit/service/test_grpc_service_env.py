"""The environment the stack starts the gRPC server with."""

from __future__ import annotations

import os
from pathlib import Path

from featurestore.config import load_settings
from featurestore.stack.service import GrpcService


def test_the_server_runs_with_two_malloc_arenas(tmp_path: Path) -> None:
    # RSS after large exports: 417-713 MB with glibc's default arenas, 315-324 MB with two.
    env = GrpcService(load_settings({"FEATURESTORE_DATA_DIR": str(tmp_path)})).child_env()
    assert env["MALLOC_ARENA_MAX"] == os.environ.get("MALLOC_ARENA_MAX", "2")
