"""What the store defines (entities, feature views, feature services), read from Feast's registry.

Domain dataclasses at this boundary, never Feast objects; Feast is imported only by the
functions that talk to Feast (:func:`load_repo`, :func:`load_definitions`, and
:mod:`featurestore.apply` above this package). ``registry/`` (Feast's own objects, written by
hand) is the source of truth.
"""

from __future__ import annotations

from featurestore.definitions import model
from featurestore.definitions.catalog import market_definitions
from featurestore.definitions.catalog import stream_definitions
from featurestore.definitions.model import *  # noqa: F403  (the domain types: model.__all__)
from featurestore.definitions.registry import load_definitions
from featurestore.definitions.repo import PROJECT
from featurestore.definitions.repo import REPO_PATH
from featurestore.definitions.repo import load_repo
from featurestore.definitions.validate import validate_definitions

__all__ = [
    "PROJECT",
    "REPO_PATH",
    "load_definitions",
    "load_repo",
    "market_definitions",
    "stream_definitions",
    "validate_definitions",
    *model.__all__,
]
