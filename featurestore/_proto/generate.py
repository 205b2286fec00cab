"""Regenerate the Python stubs of ``proto/`` into this package: ``python -m featurestore._proto.generate``.

Uses grpcio-tools' bundled protoc (pinned with grpcio), writes ``*_pb2.py``, ``*_pb2.pyi`` and
``*_pb2_grpc.py`` under ``featurestore/_proto/``, and rewrites the generated imports from the
proto packages (``featurestore.v1``) to their place here (``featurestore._proto.v1``). Never edit
the output by hand.
"""

from __future__ import annotations

import re
import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
PROTO_ROOT = REPO / "proto"
# Only import statements (and, in .pyi stubs, type references): the serialized descriptors in
# *_pb2.py name the proto packages and must stay as they are.
_IMPORT = re.compile(r"^(from|import) featurestore\.(v1|storage)\b", re.MULTILINE)
_STUB_REF = re.compile(r"\bfeaturestore\.(v1|storage)\b")


def generate() -> list[Path]:
    """Compile every ``.proto`` under ``proto/`` and return the files written."""
    import grpc_tools
    from grpc_tools import protoc

    sources = sorted(str(p.relative_to(PROTO_ROOT)) for p in PROTO_ROOT.rglob("*.proto"))
    well_known = Path(grpc_tools.__file__).parent / "_proto"
    with tempfile.TemporaryDirectory() as tmp:
        args = [
            "protoc",
            f"-I{PROTO_ROOT}",
            f"-I{well_known}",
            f"--python_out={tmp}",
            f"--pyi_out={tmp}",
            f"--grpc_python_out={tmp}",
            *sources,
        ]
        if protoc.main(args) != 0:
            raise SystemExit("protoc failed")
        for old in HERE.iterdir():
            if old.is_dir() and old.name != "__pycache__":
                shutil.rmtree(old)
        written: list[Path] = []
        out_root = Path(tmp) / "featurestore"
        for src in sorted(out_root.rglob("*.py*")):
            dest = HERE / src.relative_to(out_root)
            dest.parent.mkdir(parents=True, exist_ok=True)
            text = _IMPORT.sub(r"\1 featurestore._proto.\2", src.read_text())
            if src.suffix == ".pyi":
                text = _STUB_REF.sub(r"featurestore._proto.\1", text)
            dest.write_text(text)
            written.append(dest)
        for package in {p.parent for p in written}:
            walk = package
            while walk != HERE:
                (walk / "__init__.py").touch()
                walk = walk.parent
    return written


if __name__ == "__main__":
    for path in generate():
        sys.stdout.write(f"{path.relative_to(REPO)}\n")
