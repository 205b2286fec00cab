"""The Go and TypeScript clients' own tests (clients/go, clients/typescript), in the unit suite.

Each client tests itself in its own language against a server scripted in the same process
(``go test``; ``node --test`` of the tests compiled by the package's ``tsc`` with
``tsconfig.test.json``). Here they run as subprocesses, and a failure shows their output.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.client_toolchains import GO_CLIENT
from tests.client_toolchains import compile_typescript
from tests.client_toolchains import go_command
from tests.client_toolchains import go_environment
from tests.client_toolchains import node_command

pytestmark = pytest.mark.slow


def _passes(command: list[str], result: subprocess.CompletedProcess[str]) -> None:
    if result.returncode != 0:
        pytest.fail(
            f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout}{result.stderr}"
        )


def test_go_client() -> None:
    """``go test ./...`` in clients/go."""
    command = [go_command(), "test", "./..."]
    result = subprocess.run(
        command, cwd=GO_CLIENT, env=go_environment(), capture_output=True, text=True, timeout=240
    )
    _passes(command, result)


def test_typescript_client(tmp_path: Path) -> None:
    """The TypeScript client's ``test/*.test.ts``, compiled, under node's test runner."""
    compile_typescript(tmp_path, "tsconfig.test.json")
    tests = sorted(str(path) for path in (tmp_path / "test").glob("*.test.js"))
    assert tests, "no compiled test/*.test.js"
    command = [node_command(), "--test", *tests]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    _passes(command, result)
