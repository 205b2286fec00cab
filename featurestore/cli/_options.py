"""Option groups and parameter parsing that several commands share."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import click

__all__ = ["aware_time", "option_group"]


def option_group(
    *options: Callable[[click.decorators.FC], click.decorators.FC],
) -> Callable[[click.decorators.FC], click.decorators.FC]:
    """One decorator applying ``options`` in order, as if each were written above the command."""

    def decorate(func: click.decorators.FC) -> click.decorators.FC:
        for option in reversed(options):
            func = option(func)
        return func

    return decorate


def aware_time(value: str | None) -> datetime | None:
    """An ISO 8601 time with its UTC offset (BadParameter without one); None stays None."""
    if value is None:
        return None
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise click.BadParameter(f"{value!r} needs a UTC offset (e.g. 2024-01-02T15:00+00:00)")
    return parsed
