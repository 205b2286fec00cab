"""Every mistake of a repo in one report, instead of one per run of plan or apply.

Reading and checking a repo takes seconds (Feast's import), so a user who wrote three mistakes
should not need three runs to learn of them. The codec and the validator check each view and
service on its own inside :meth:`Problems.each`; a failed check is noted and the next one runs;
:meth:`Problems.raise_any` then raises one :class:`ConfigurationError` naming them all (the one
message alone when there is one, as before).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from featurestore.errors import ConfigurationError

__all__ = ["Problems"]


class Problems:
    """The :class:`ConfigurationError` of each failed check so far, in order."""

    def __init__(self) -> None:
        """Start with none."""
        self.errors: list[ConfigurationError] = []

    @contextmanager
    def each(self) -> Iterator[None]:
        """Run one check: its :class:`ConfigurationError` is noted instead of raised."""
        try:
            yield
        except ConfigurationError as exc:
            if all(str(exc) != str(seen) for seen in self.errors):
                self.errors.append(exc)

    def raise_any(self) -> None:
        """Raise the problems noted, if any: the one error itself, or one listing them all."""
        if len(self.errors) == 1:
            raise self.errors[0]
        if self.errors:
            listed = "\n".join(f"  {i}. {e}" for i, e in enumerate(self.errors, 1))
            raise ConfigurationError(f"{len(self.errors)} problems:\n{listed}")
