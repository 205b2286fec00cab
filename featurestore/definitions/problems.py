"""Every mistake of a repo in one report, instead of one per run of plan or apply.

Reading and checking a repo takes seconds (Feast's import), so a user who wrote three mistakes
should not need three runs to learn of them. The codec and the validator check each view and
service on its own inside :meth:`Problems.each`; a failed check is noted and the next one runs;
:meth:`Problems.raise_any` then raises one :class:`ConfigurationError` naming them all (the one
message alone when there is one, as before). The same mistake found in several views (a
computed column of a source function that each view's source is built by) is one problem naming
those views, not one line per view.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

from featurestore.errors import ConfigurationError

__all__ = ["Problems"]

_OF_A_VIEW = re.compile(r"feature view ('[^']*')([ :].*)", re.DOTALL)
"""A view's problem: the view's quoted name, then what is wrong with it (from its space or
colon)."""


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
        errors = _views_merged(self.errors)
        if len(errors) == 1:
            raise errors[0]
        if errors:
            listed = "\n".join(f"  {i}. {e}" for i, e in enumerate(errors, 1))
            raise ConfigurationError(f"{len(errors)} problems:\n{listed}")


def _views_merged(errors: list[ConfigurationError]) -> list[ConfigurationError]:
    """``errors`` with those that differ only in the view they name made one, in first order."""
    groups: dict[str, tuple[list[ConfigurationError], list[str]]] = {}
    for error in errors:
        found = _OF_A_VIEW.fullmatch(str(error))
        key = f"view: {found.group(2)}" if found else f"other: {error}"
        same, names = groups.setdefault(key, ([], []))
        same.append(error)
        names.append(found.group(1) if found else "")
    merged = []
    for key, (same, names) in groups.items():
        if len(same) == 1:
            merged.append(same[0])
        else:  # only a view's problem can be found twice: Problems.each keeps one of each
            rest = key.removeprefix("view: ")
            merged.append(ConfigurationError(f"feature views {', '.join(names)}{rest}"))
    return merged
