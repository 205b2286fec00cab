"""buf lint and buf breaking over proto/ (buf.yaml), when buf is installed (`make setup`)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]


def _buf() -> str:
    found = shutil.which("buf")
    gopath = Path(os.environ.get("GOPATH", Path.home() / "go"))
    if found is None and (gopath / "bin" / "buf").is_file():
        found = str(gopath / "bin" / "buf")
    if found is None:
        pytest.skip("buf is not installed (make setup builds it with go install)")
    return found


def _run(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run([_buf(), *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_buf_lint_passes() -> None:
    result = _run("lint")
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_breaking_change_against_the_committed_main() -> None:
    if not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    result = _run("breaking", "--against", ".git#branch=main")
    assert result.returncode == 0, result.stdout + result.stderr


def test_buf_breaking_catches_a_renumbered_field(tmp_path: Path) -> None:
    changed = tmp_path / "repo"
    shutil.copytree(REPO / "proto", changed / "proto")
    shutil.copy(REPO / "buf.yaml", changed / "buf.yaml")
    proto = changed / "proto" / "featurestore" / "v1" / "prediction_service.proto"
    text = proto.read_text()
    assert "string model_name = 1;" in text
    proto.write_text(text.replace("string model_name = 1;", "string model_name = 9;", 1))
    result = _run("breaking", "--against", str(REPO), cwd=changed)
    assert result.returncode != 0
    assert "model_name" in result.stdout + result.stderr
