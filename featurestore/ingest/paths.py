"""Where the shared data folder is: ``../shared`` beside the repository, or an override."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from featurestore.errors import ConfigurationError

__all__ = ["SHARED_DIR_ENV", "market_data_dir", "shared_dir"]

SHARED_DIR_ENV = "FEATURESTORE_SHARED_DIR"
_REPO_ROOT = Path(__file__).resolve().parents[2]


def shared_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Return the shared data folder: ``$FEATURESTORE_SHARED_DIR``, else ``<repo>/../shared``.

    Raises:
        ConfigurationError: the folder does not exist.

    """
    env = os.environ if environ is None else environ
    override = env.get(SHARED_DIR_ENV)
    path = Path(override) if override else _REPO_ROOT.parent / "shared"
    if not path.is_dir():
        raise ConfigurationError(
            f"shared data folder {path} does not exist; set {SHARED_DIR_ENV} to where it is"
        )
    return path


def market_data_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Return the folder of real trade files (``<shared>/data/market``).

    Raises:
        ConfigurationError: the folder does not exist.

    """
    path = shared_dir(environ) / "data" / "market"
    if not path.is_dir():
        raise ConfigurationError(f"market data folder {path} does not exist")
    return path
