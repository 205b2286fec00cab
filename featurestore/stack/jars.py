"""JVM jars resolved from Maven Central by Maven, through ``deploy/jvm/pom.xml``.

Each profile of the pom (``kafka``, ``spark``) is copied into its own folder under the stack's data
folder, once: a stamp holding the pom's hash says the folder is complete and current.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
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
    digest = hashlib.sha256(POM.read_bytes()).hexdigest()
    stamp = target / ".resolved"
    if stamp.is_file() and stamp.read_text().strip() == digest:
        return target
    mvn = shutil.which("mvn")
    if mvn is None:
        raise ConfigurationError("Maven (mvn) is not installed; run `make setup`")
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    result = subprocess.run(
        [
            mvn,
            "-q",
            "-B",
            "-f",
            str(POM),
            f"-P{profile}",
            "dependency:copy-dependencies",
            f"-DoutputDirectory={target}",
            "-DincludeScope=runtime",
        ],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise ConfigurationError(
            f"Maven could not resolve the {profile} jars from {POM}:\n{result.stdout[-3000:]}"
        )
    stamp.write_text(digest + "\n")
    return target
