"""The driver's Python packages and the project's code, packed for executors that lack them.

On a cluster whose nodes do not have the project's environment at the driver's path, a
processor ships it with the application (``FEATURESTORE_SPARK_CLUSTER__SHIP_ENVIRONMENT``), as
venv-pack would, in two archives that Spark unpacks in each executor's working directory
(``spark.archives``):

- ``environment``: a venv of the distributions a task imports (found by importing the
  executor's modules in a fresh interpreter, plus what those distributions require), with
  ``bin/python`` linking to the driver's base interpreter (which must exist at the same path on
  every node; the Python minor version is checked at start, :mod:`processors.spark.executors`).
  pyspark and py4j are left out: each node's Spark puts its own on the Python workers' path.
  Packed once per set of installed versions and reused (``env-<digest>.tar.gz``).
- ``featurestore-code``: the project's packages (``featurestore``, ``processors``), put on the
  workers' ``PYTHONPATH``; packed per start (a few MB), named by the content's digest.

The driver's own ``sys.path`` is left alone (``--py-files`` would put the zip in front of it).
"""

from __future__ import annotations

import hashlib
import importlib.metadata as metadata
import io
import json
import os
import re
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from featurestore.config import Settings
from featurestore.errors import ConfigurationError

__all__ = [
    "CODE_PACKAGES",
    "EXECUTOR_MODULES",
    "ShippedEnvironment",
    "executor_distributions",
    "pack_code",
    "pack_environment",
    "shipped_environment",
]

EXECUTOR_MODULES = ("processors.partition_job", "pandas", "pyarrow")
"""What a task imports: the step with its I/O, and what pyspark's Arrow worker needs."""
CODE_PACKAGES = ("featurestore", "processors")
"""The project's packages a task needs (shipped as code, not as an installed distribution)."""
_LEFT_OUT = {"pyspark", "py4j", "featurestore", "featurestore-client"}
"""Each node's Spark brings pyspark and py4j; the project travels as code."""
ENVIRONMENT = "environment"
"""The folder the environment is unpacked into, in each executor's working directory."""
CODE = "featurestore-code"
"""The folder the project's code is unpacked into."""


@dataclass(frozen=True)
class ShippedEnvironment:
    """What a Spark application sets to run its tasks in the shipped environment."""

    archive: str
    """The packed environment (a path or URL)."""
    code: Path
    """The project's code, zipped."""

    @property
    def python(self) -> str:
        """The executors' interpreter, relative to their working directory."""
        return f"./{ENVIRONMENT}/bin/python"

    def spark_conf(self) -> dict[str, str]:
        """The application's settings that ship both archives and put them to use."""
        return {
            "spark.archives": f"{self.archive}#{ENVIRONMENT},{self.code}#{CODE}",
            "spark.executorEnv.PYTHONPATH": f"./{CODE}",
        }


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def executor_distributions(python: str = sys.executable) -> list[metadata.Distribution]:
    """The installed distributions a task needs, sorted by name.

    The roots are the distributions of every module that importing :data:`EXECUTOR_MODULES`
    loads, in a fresh interpreter (the driver itself has imported far more); the result adds
    what they require (without extras), and leaves out :data:`_LEFT_OUT`.
    """
    script = (
        "import importlib, json, sys\n"
        f"for m in {list(EXECUTOR_MODULES)!r}: importlib.import_module(m)\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))\n"
    )
    done = subprocess.run([python, "-c", script], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise ConfigurationError(f"could not list the executors' modules: {done.stderr[-2000:]}")
    top = json.loads(done.stdout.strip().splitlines()[-1])
    owners = metadata.packages_distributions()
    todo = [d for name in top for d in owners.get(name, [])]
    found: dict[str, metadata.Distribution] = {}
    while todo:
        name = _normalize(todo.pop())
        if name in found or name in _LEFT_OUT:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue  # an optional requirement that is not installed
        found[name] = dist
        for requirement in dist.requires or []:
            if "extra ==" in requirement:
                continue
            todo.append(re.split(r"[\s;<>=!~\[(]", requirement, maxsplit=1)[0])
    return [found[name] for name in sorted(found)]


def _site_files(dist: metadata.Distribution) -> Iterable[tuple[Path, str]]:
    """A distribution's files inside site-packages: (where, name in site-packages)."""
    for file in dist.files or []:
        name = str(file)
        if name.startswith("..") or "__pycache__" in file.parts:
            continue  # scripts in bin/, and byte code the executors write again
        path = Path(str(dist.locate_file(file)))
        if path.is_file():
            yield path, name


def _base_python() -> Path:
    """The interpreter a venv's ``bin/python`` stands for."""
    return Path(getattr(sys, "_base_executable", sys.executable)).resolve()


def pack_environment(folder: Path, python: str = sys.executable) -> Path:
    """The packed environment for the executors, made unless already there; returns its path."""
    dists = executor_distributions(python)
    base = _base_python()
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    digest = hashlib.sha256(
        json.dumps([str(base), sys.version, [(d.name, d.version) for d in dists]]).encode()
    ).hexdigest()[:16]
    target = folder / f"env-py{version}-{digest}.tar.gz"
    if target.is_file():
        return target
    folder.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}")
    site = f"lib/python{version}/site-packages"
    with tarfile.open(partial, "w:gz", compresslevel=1) as tar:
        cfg = (
            f"home = {base.parent}\ninclude-system-site-packages = false\n"
            f"version = {sys.version.split()[0]}\n"
        ).encode()
        _add_bytes(tar, "pyvenv.cfg", cfg)
        for name, link in (("python", str(base)), ("python3", "python"),
                           (f"python{version}", "python")):  # fmt: skip
            info = tarfile.TarInfo(f"bin/{name}")
            info.type, info.linkname, info.mode = tarfile.SYMTYPE, link, 0o777
            tar.addfile(info)
        for dist in dists:
            for path, name in _site_files(dist):
                tar.add(path, f"{site}/{name}", recursive=False)
    partial.rename(target)
    return target


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), 0o644
    tar.addfile(info, io.BytesIO(data))


def pack_code(folder: Path) -> Path:
    """The project's packages (:data:`CODE_PACKAGES`) in a zip named by their content."""
    root = Path(__file__).resolve().parents[2]
    files = sorted(
        p
        for package in CODE_PACKAGES
        for p in (root / package).rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    )
    digest = hashlib.sha256()
    for path in files:
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    target = folder / f"code-{digest.hexdigest()[:16]}.zip"
    if target.is_file():
        return target
    folder.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}")
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for path in files:
            archive.write(path, str(path.relative_to(root)))
    partial.rename(target)
    return target


def shipped_environment(settings: Settings) -> ShippedEnvironment | None:
    """What to ship with an application on a cluster; None when executors use their own."""
    cluster = settings.spark_cluster
    if not cluster.ship_environment:
        return None
    folder = settings.data_dir.resolve() / "spark" / "shipped"
    archive = cluster.environment_archive or str(pack_environment(folder))
    return ShippedEnvironment(archive=archive, code=pack_code(folder))
