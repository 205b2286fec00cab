"""Option groups and parameter types that several commands share."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime
from typing import Any

import click

__all__ = [
    "AWARE_TIME",
    "AwareTime",
    "FiniteFloat",
    "comma_list",
    "option_group",
    "positive_seconds",
    "project_option",
]


def option_group(
    *options: Callable[[click.decorators.FC], click.decorators.FC],
) -> Callable[[click.decorators.FC], click.decorators.FC]:
    """One decorator applying ``options`` in order, as if each were written above the command."""

    def decorate(func: click.decorators.FC) -> click.decorators.FC:
        for option in reversed(options):
            func = option(func)
        return func

    return decorate


def comma_list(
    *names: str, help: str, required: bool = False
) -> Callable[[click.decorators.FC], click.decorators.FC]:
    """An option of comma-separated values that may also be repeated: ``--x a,b --x c``.

    The command gets every value, stripped, as one tuple (empty: not given). Without it, click
    keeps the last of a repeated option and drops the others without a word. A given text with
    no value in it (``--x ,``) is a usage error, not "not given".
    """

    def flatten(
        ctx: click.Context, param: click.Parameter, given: tuple[str, ...]
    ) -> tuple[str, ...]:
        values: list[str] = []
        for text in given:
            these = [v.strip() for v in text.split(",") if v.strip()]
            if not these:
                raise click.BadParameter(f"{text!r} names no value")
            values.extend(these)
        return tuple(values)

    return click.option(*names, multiple=True, callback=flatten, required=required, help=help)


project_option = click.option(
    "--project", default=None, help="Feast project (default: featurestore)."
)
"""``--project``: the Feast project a command works on (None: the store's own, ``featurestore``)."""


class AwareTime(click.ParamType):  # type: ignore[type-arg]
    """An ISO 8601 time with its UTC offset, parsed while click reads the options.

    A bad value is a usage error naming the option, before any connection is made.
    """

    name = "iso-time"
    _EXAMPLE = "e.g. 2024-01-02T15:00+00:00"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        """``value`` as an aware datetime (a datetime given by code passes through)."""
        if isinstance(value, datetime):
            parsed = value
        else:
            try:
                parsed = datetime.fromisoformat(str(value))
            except ValueError:
                self.fail(
                    f"{value!r} is not an ISO time with a UTC offset ({self._EXAMPLE})", param, ctx
                )
        if parsed.tzinfo is None:
            self.fail(f"{value!r} needs a UTC offset ({self._EXAMPLE})", param, ctx)
        return parsed


AWARE_TIME = AwareTime()
"""The shared instance, for ``type=AWARE_TIME``."""


class FiniteFloat(click.FloatRange):
    """A :class:`click.FloatRange` that also refuses ``nan`` and ``inf``.

    ``FloatRange`` lets ``nan`` through (every comparison with it is false): a timeout of
    ``nan`` waits for ever, and librdkafka takes 0 as no bound at all, so a timeout that bounds
    something is ``FiniteFloat(min=0, min_open=True)``.
    """

    name = "number"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        """``value`` as a finite float within the range."""
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number


def positive_seconds() -> FiniteFloat:
    """Seconds that bound a wait: finite and above 0."""
    return FiniteFloat(min=0, min_open=True)
