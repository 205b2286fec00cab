"""Follow an MLflow alias: the version it points at, loaded, swapped when the alias moves.

The anomaly scorers (:class:`~models.scoring.AnomalyScorer`,
:class:`~models.anomaly.scorer.StreamScorer`) and the prediction feed
(:class:`~models.predictor.Predictor`) each score with the version an alias (``champion``)
points at and pick a promotion up without a restart. They are :class:`AliasFollower` s: each
says how a version is loaded (:meth:`AliasFollower._load`) and this class does the rest.

A background thread (:meth:`AliasFollower.start`) reads the alias every ``poll_interval_s``; when
it has moved, the new version is loaded on that thread and swapped in as one attribute
assignment, so scoring never waits for MLflow and a batch scores with one version from start to
end (it reads :attr:`AliasFollower.current` once). While MLflow is away, or the new version
cannot be loaded, the follower keeps the version it has and says so in the log.
"""

from __future__ import annotations

import logging
import threading
from abc import ABC
from abc import abstractmethod
from typing import Generic
from typing import Self
from typing import TypeVar

from featurestore.errors import FeatureStoreError
from featurestore.errors import NotFoundError
from models.registry import CHAMPION
from models.registry import ModelRef
from models.registry import ModelRegistry

__all__ = ["AliasFollower"]

logger = logging.getLogger(__name__)

M = TypeVar("M")


class AliasFollower(ABC, Generic[M]):
    """The loaded version an alias points at (:attr:`current`), following the alias.

    A subclass implements :meth:`_load` and sets whatever :meth:`_load` reads before calling
    ``super().__init__``, which loads the first version.

    Args:
        registry: the MLflow registry.
        model_name: the registered model.
        alias: the alias to follow.
        poll_interval_s: how often :meth:`start`'s thread reads the alias.
        purpose: what the version is for, in the error when the alias is not set
            ("score with", "predict with").

    Raises:
        NotFoundError: the model has no version under ``alias``.
    """

    def __init__(
        self,
        registry: ModelRegistry,
        model_name: str,
        *,
        alias: str = CHAMPION,
        poll_interval_s: float = 5.0,
        purpose: str = "score with",
    ) -> None:
        """Load the version ``alias`` points at now."""
        self.registry = registry
        self.model_name = model_name
        self.alias = alias
        self.poll_interval_s = poll_interval_s
        ref = registry.alias(model_name, alias)
        if ref is None:
            raise NotFoundError(f"model {model_name!r} has no {alias!r} version to {purpose}")
        self._current = self._load(ref)
        self._version = ref.version
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @abstractmethod
    def _load(self, ref: ModelRef) -> M:
        """Load ``ref`` and check it fits this user (raise a FeatureStoreError if not)."""

    @property
    def current(self) -> M:
        """The loaded version in use now."""
        return self._current

    @property
    def version(self) -> str:
        """The version number of :attr:`current`."""
        return self._version

    def refresh(self) -> bool:
        """Read the alias; load and switch to its version if it moved. Returns whether it did."""
        ref = self.registry.alias(self.model_name, self.alias)
        if ref is None or ref.version == self._version:
            return False
        loaded = self._load(ref)
        self._current, self._version = loaded, ref.version
        logger.info("%s now uses %s version %s", type(self).__name__, ref.name, ref.version)
        return True

    def start(self) -> Self:
        """Follow the alias in a background thread until :meth:`close`."""
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(
                target=self._poll, name=f"alias-{self.model_name}", daemon=True
            )
            self._thread.start()
        return self

    def _poll(self) -> None:
        while not self._stop.wait(self.poll_interval_s):
            try:
                self.refresh()
            except FeatureStoreError as exc:
                logger.warning("keeping %s version %s: %s", self.model_name, self._version, exc)

    def close(self) -> None:
        """Stop following the alias (the version in use stays usable)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def __enter__(self) -> Self:
        """Start following (:meth:`start`)."""
        return self.start()

    def __exit__(self, *exc: object) -> None:
        """Stop following (:meth:`close`)."""
        self.close()
