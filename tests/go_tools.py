"""Go command-line tools the tests drive (grpcurl, ghz, buf); deploy/bootstrap.sh installs them."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

__all__ = ["go_tool"]


def go_tool(name: str) -> str:
    """The path of ``name`` on PATH or in ``$GOPATH/bin``; fails the test when it is missing."""
    found = shutil.which(name)
    gopath = Path(os.environ.get("GOPATH", Path.home() / "go"))
    if found is None and (gopath / "bin" / name).is_file():
        found = str(gopath / "bin" / name)
    if found is None:
        pytest.fail(f"{name} is not installed: `make setup` builds it with `go install`")
    return found
