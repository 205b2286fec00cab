"""JVM jars resolved from Maven Central by Maven, through ``deploy/jvm/pom.xml``.

Each profile of the pom (``kafka``, ``spark``) is copied into its own folder under the stack's data
folder, once: a stamp holding the hash of that profile (and of the pom's properties) says the
folder is complete and current, so a change to one profile leaves the others' jars alone.

A profile is resolved under a lock into a fresh folder that then takes the old one's place: a JVM
already running from the old folder finds the same file names there again, and two processes
resolving at once do it one after the other.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

from featurestore.config import Settings
from featurestore.errors import ConfigurationError

__all__ = ["POM", "jar_dir", "resolve_jars"]

POM = Path(__file__).resolve().parents[2] / "deploy" / "jvm" / "pom.xml"


def jar_dir(settings: Settings, profile: str) -> Path:
    """The folder holding the jars of one pom profile."""
    return settings.data_dir.resolve() / "jars" / profile


def resolve_jars(settings: Settings, profile: str) -> Path:
    """Resolve the jars of ``profile`` with Maven unless they are already there.

    Returns:
        The folder holding the jars.
    """
    if not POM.is_file():
        raise ConfigurationError(f"{POM} is missing; run from a checkout of the project")
    target = jar_dir(settings, profile)
    digest = _profile_digest(profile)
    if _current(target, digest):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with _locked(target.parent / f".{profile}.lock"):
        if not _current(target, digest):
            _resolve(profile, target, digest)
    return target


def _current(target: Path, digest: str) -> bool:
    stamp = target / ".resolved"
    return stamp.is_file() and stamp.read_text().strip() == digest


def _profile_digest(profile: str) -> str:
    """The hash of what decides a profile's jars: its element and the pom's properties."""
    ns = {"m": "http://maven.apache.org/POM/4.0.0"}
    root = ET.parse(POM).getroot()
    properties = root.find("m:properties", ns)
    for element in root.iterfind("m:profiles/m:profile", ns):
        if element.findtext("m:id", namespaces=ns) == profile:
            digest = hashlib.sha256(ET.tostring(element))
            if properties is not None:
                digest.update(ET.tostring(properties))
            return digest.hexdigest()
    raise ConfigurationError(f"{POM} has no profile {profile!r}")


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _resolve(profile: str, target: Path, digest: str) -> None:
    mvn = shutil.which("mvn")
    if mvn is None:
        raise ConfigurationError("Maven (mvn) is not installed; run `make setup`")
    fresh = target.with_name(f".{profile}.new-{os.getpid()}")
    if fresh.exists():
        shutil.rmtree(fresh)
    fresh.mkdir(parents=True)
    result = subprocess.run(
        [
            mvn,
            "-q",
            "-B",
            "-f",
            str(POM),
            f"-P{profile}",
            "dependency:copy-dependencies",
            f"-DoutputDirectory={fresh}",
            "-DincludeScope=runtime",
        ],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        shutil.rmtree(fresh, ignore_errors=True)
        raise ConfigurationError(
            f"Maven could not resolve the {profile} jars from {POM}:\n{result.stdout[-3000:]}"
        )
    (fresh / ".resolved").write_text(digest + "\n")
    old = target.with_name(f".{profile}.old-{os.getpid()}")
    if target.exists():
        target.rename(old)
    fresh.rename(target)
    shutil.rmtree(old, ignore_errors=True)
