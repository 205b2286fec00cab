"""Building the Go and TypeScript clients (clients/go, clients/typescript) as their READMEs say.

The unit suite runs their own tests (tests/unit/clients) and the integration suite their examples
against a live server (tests/integration/service/test_generated_clients.py). Go builds use Go's
build cache (``go env GOCACHE``; deploy/bootstrap.sh warms it), so only the first build on a
machine compiles the dependencies; the TypeScript packages come from ``npm ci`` (``make setup``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

__all__ = [
    "GO_CLIENT",
    "TYPESCRIPT_CLIENT",
    "compile_typescript",
    "go_command",
    "go_environment",
    "node_command",
]

REPO = Path(__file__).resolve().parents[1]
GO_CLIENT = REPO / "clients" / "go"
TYPESCRIPT_CLIENT = REPO / "clients" / "typescript"


def go_command() -> str:
    """The ``go`` on PATH; fails the test when there is none."""
    go = shutil.which("go")
    if go is None:
        pytest.fail("go is not installed")
    return go


def go_environment() -> dict[str, str]:
    """The environment of a ``go`` command: this one, with the module graph read-only."""
    return {**os.environ, "GOFLAGS": "-mod=readonly"}


def node_command() -> str:
    """The ``node`` on PATH, with the TypeScript client's packages installed, or fails the test."""
    node = shutil.which("node")
    if node is None or not (TYPESCRIPT_CLIENT / "node_modules" / ".bin" / "tsc").is_file():
        pytest.fail("node or clients/typescript/node_modules missing: `make setup` installs them")
    return node


def compile_typescript(out: Path, project: str = "tsconfig.json") -> None:
    """Compile the TypeScript client's ``project`` into ``out``, runnable there by node.

    Fails the test with the compiler's output when it does not compile.
    """
    node_command()
    tsc = TYPESCRIPT_CLIENT / "node_modules" / ".bin" / "tsc"
    command = [str(tsc), "-p", str(TYPESCRIPT_CLIENT / project), "--outDir", str(out)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=180)
    if result.returncode != 0:
        pytest.fail(f"tsc -p {project} failed:\n{result.stdout}{result.stderr}")
    # Node resolves the package's dependencies from the output's parent folders: link them.
    modules = out / "node_modules"
    if not modules.exists():
        modules.symlink_to(TYPESCRIPT_CLIENT / "node_modules", target_is_directory=True)
    (out / "package.json").write_text(json.dumps({"type": "module"}))
