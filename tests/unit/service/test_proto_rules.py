"""buf lint and buf breaking over proto/ (buf.yaml); buf is installed by `make setup`."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.go_tools import go_tool

REPO = Path(__file__).resolve().parents[3]


def _run(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [go_tool("buf"), *args], cwd=cwd, capture_output=True, text=True, timeout=120
    )


def test_buf_lint_passes() -> None:
    result = _run("lint")
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_breaking_change_against_the_committed_main() -> None:
    if not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    result = _run("breaking", "--against", ".git#branch=main")
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_breaking_change_since_the_proto_before_its_last_change() -> None:
    """The working tree against proto/ as it was before the last commit that changed it.

    Against main alone, a change is checked only while it is uncommitted; this also checks the
    latest committed change, so that a breaking one fails every later run until it is undone.
    """
    if not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    last = subprocess.run(
        ["git", "log", "-n", "1", "--format=%H", "--", "proto", "buf.yaml"],
        cwd=REPO, capture_output=True, text=True, timeout=30, check=True,
    ).stdout.strip()  # fmt: skip
    parent = subprocess.run(
        ["git", "rev-parse", "--verify", "--quiet", f"{last}~1"],
        cwd=REPO, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    if not last or parent.returncode != 0:
        pytest.skip("no earlier proto/ in this clone's history (a shallow clone?)")
    result = _run("breaking", "--against", f".git#ref={parent.stdout.strip()}")
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


def test_the_committed_go_and_typescript_code_is_what_buf_generates(tmp_path: Path) -> None:
    """clients/go/gen and clients/typescript/src/gen are buf.gen.yaml's output for proto/ now."""
    es = REPO / "clients" / "typescript" / "node_modules" / ".bin" / "protoc-gen-es"
    if not es.is_file():
        pytest.fail("clients/typescript/node_modules is missing: `make setup` installs it")
    gobin = Path(go_tool("protoc-gen-go")).parent
    result = subprocess.run(
        [go_tool("buf"), "generate", "--output", str(tmp_path)],
        cwd=REPO, capture_output=True, text=True, timeout=120,
        env={**os.environ, "PATH": f"{gobin}{os.pathsep}{os.environ.get('PATH', '')}"},
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    for tree in ("clients/go/gen", "clients/typescript/src/gen"):
        generated = {
            p.relative_to(tmp_path / tree): p.read_bytes() for p in _files(tmp_path / tree)
        }
        committed = {p.relative_to(REPO / tree): p.read_bytes() for p in _files(REPO / tree)}
        assert generated.keys() == committed.keys(), tree
        stale = [str(path) for path in generated if generated[path] != committed[path]]
        assert not stale, f"run `make proto`: {tree} differs in {stale}"


def _files(root: Path) -> list[Path]:
    return [path for path in root.rglob("*") if path.is_file()]
