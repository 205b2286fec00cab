"""Labels for market data that cannot see the future of the features, nor use the present.

A label at time ``t`` reads only bars with ``t < event_timestamp <= t + horizon``:

* ``entry(t)``: the price (``close``) of the FIRST bar with ``event_timestamp > t`` and
  ``event_timestamp <= t + max_wait`` -- the first price at which a decision taken at ``t`` could
  trade; null when no bar comes that soon.
* ``exit(t)``: the price of the LAST bar with ``event_timestamp <= t + horizon``, no older than
  ``t + horizon - max_staleness`` and strictly after ``t`` -- the last price known at
  ``t + horizon``; null when there is none.
* ``forward_return = exit / entry - 1`` (``0`` when the only bar of the window is both);
  ``direction``: ``1`` when ``forward_return > threshold``, ``-1`` when it is ``< -threshold``,
  ``0`` otherwise, null when the return is null.

A label is made only once its horizon has passed as far as the data goes: when the store holds a
bar of the symbol (with a price or not) at or after ``t + horizon``. Until then both columns are
null, since a bar still to come in ``(t, t + horizon]`` would change the exit (an export at 05:55:03
would otherwise label 05:55 from 3 seconds of a 5-minute horizon, and another label the next
time it runs). The data decides, not the clock: a replay of old data has its labels. It is the
rule by which the predictions table knows an outcome (:mod:`featurestore.offline.predictions`),
written for SQL in two forms of the same test: :func:`horizon_passed_sql` for one row, and
:func:`latest_seen_sql` (a key's latest time, to compare with ``t + horizon``) for the many rows
of an export, which share a few keys; a bar arriving late, after a bar past the horizon, can still
change a label, as it can an outcome.

Of several bars with the same key and ``event_timestamp`` the latest ``created_timestamp`` wins,
as in the point-in-time join. A bar without a price (the empty bar a running view holds at a
minute's end until its first trade) is not a price and is skipped. A bar at exactly ``t`` or
before never affects a label (features are joined with ``event_timestamp <= t``, so features
and labels never share a bar), and neither does a bar after ``t + horizon``: training sets are
free of lookahead by construction.

With the processors' ``bars_1m`` (a row as of each trade time, see ``processors/README.md``) the
entry is the first trade after ``t`` and the exit the last trade by ``t + horizon``; with
minute-end bars they are the closes of the first and last minutes ending in the window.

Two implementations of the same definition: :class:`featurestore.offline.PostgresOfflineStore`
computes labels in PostgreSQL (two index probes per row, for millions of rows; ask with
``TrainingRequest(labels=LabelSpec(...))``), and :func:`add_forward_labels` on pandas frames of
bars already in memory (the reference the store is tested against).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa
from psycopg import sql

from featurestore.errors import ValidationError

__all__ = [
    "LABEL_KINDS",
    "LabelSpec",
    "add_forward_labels",
    "horizon_passed",
    "horizon_passed_sql",
    "labels_from_prices",
    "latest_seen_sql",
]

LABEL_KINDS = ("both", "return", "direction")
"""Which label columns to add: both, ``forward_return`` only or ``direction`` only."""


@dataclass(frozen=True)
class LabelSpec:
    """How to compute the labels."""

    horizon: timedelta = timedelta(minutes=5)
    """The window after ``t`` whose prices make the label; must be positive."""
    max_wait: timedelta = timedelta(minutes=1)
    """How long after ``t`` the entry bar may come (at most ``horizon`` is ever read)."""
    max_staleness: timedelta = timedelta(minutes=5)
    """How old the exit bar may be at ``t + horizon``."""
    threshold: float = 0.0
    """Returns within ``[-threshold, threshold]`` are direction 0."""
    prefix: str = ""
    """Prepended to the label column names (``forward_return``, ``direction``)."""
    kind: str = "both"
    """Which columns to add: ``both``, ``return`` (forward_return) or ``direction``."""
    view: str = "bars_1m"
    """The feature view whose rows are the bars (used by the offline store)."""
    price_column: str = "close"
    """The bars' price column."""

    def __post_init__(self) -> None:
        """Refuse a horizon, wait or staleness that cannot describe labels, naming the field."""
        if self.horizon <= timedelta(0):
            raise ValidationError("label horizon must be positive", field="horizon")
        if self.max_wait <= timedelta(0):
            raise ValidationError("label max_wait must be positive", field="max_wait")
        if self.max_staleness < timedelta(0):
            raise ValidationError("label max_staleness must not be negative", field="max_staleness")
        if self.threshold < 0:
            raise ValidationError("label threshold must not be negative", field="threshold")
        if self.kind not in LABEL_KINDS:
            raise ValidationError(
                f"label kind must be one of {', '.join(LABEL_KINDS)}, not {self.kind!r}",
                field="kind",
            )

    @property
    def return_column(self) -> str:
        """Name of the forward return column."""
        return f"{self.prefix}forward_return"

    @property
    def direction_column(self) -> str:
        """Name of the direction column."""
        return f"{self.prefix}direction"

    @property
    def columns(self) -> tuple[str, ...]:
        """The label columns this spec adds, in order."""
        if self.kind == "return":
            return (self.return_column,)
        if self.kind == "direction":
            return (self.direction_column,)
        return (self.return_column, self.direction_column)


def _returns(
    entry: np.ndarray, exit_: np.ndarray, threshold: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Forward returns, directions (int8) and where they are missing."""
    with np.errstate(divide="ignore", invalid="ignore"):
        forward = exit_ / entry - 1.0
    missing = np.isnan(forward)
    direction = np.where(forward > threshold, 1, np.where(forward < -threshold, -1, 0))
    return forward, direction.astype(np.int8), missing


def horizon_passed_sql(
    bars: sql.Composable,
    entity: sql.Composable,
    time: sql.Composable,
    key: sql.Composable,
    until: sql.Composable,
) -> sql.Composed:
    """``EXISTS`` a row of table ``bars`` with ``entity = key`` and ``time >= until``.

    True once the store has seen the market of ``key`` at or past ``until`` (``t + horizon``):
    the label, or the prediction's outcome, at ``t`` can then be made. ``bars``, ``entity`` and
    ``time`` name the bars' table and columns; ``key`` and ``until`` are the outer query's
    expressions.
    """
    return sql.SQL(
        "EXISTS (SELECT 1 FROM {bars} seen WHERE seen.{entity} = {key} AND seen.{time} >= {until})"
    ).format(bars=bars, entity=entity, time=time, key=key, until=until)


def latest_seen_sql(
    bars: sql.Composable, entity: sql.Composable, time: sql.Composable, key: sql.Composable
) -> sql.Composed:
    """The latest ``time`` of table ``bars`` with ``entity = key`` (NULL: no row of ``key``).

    The horizon at ``until`` has passed when this is ``>= until``: the same test as
    :func:`horizon_passed_sql` (NULL, never passed, where it is false), asked once per key
    rather than once per row: an index probe per key, where the rows of an export are many and
    their keys few.
    """
    return sql.SQL("(SELECT max(seen.{time}) FROM {bars} seen WHERE seen.{entity} = {key})").format(
        bars=bars, entity=entity, time=time, key=key
    )


def labels_from_prices(
    entry: np.ndarray, exit_: np.ndarray, spec: LabelSpec
) -> dict[str, pa.Array]:
    """The label columns of ``spec`` as Arrow arrays, from entry and exit prices (NaN: none)."""
    forward, direction, missing = _returns(entry, exit_, spec.threshold)
    out = {
        spec.return_column: pa.array(forward, pa.float64(), mask=missing),
        spec.direction_column: pa.array(direction, pa.int8(), mask=missing),
    }
    return {name: out[name] for name in spec.columns}


def _nearest_bar(
    rows: pd.DataFrame,
    bars: pd.DataFrame,
    time_column: str,
    direction: Literal["forward", "backward"],
    tolerance: timedelta,
    *,
    exact: bool,
) -> pd.DataFrame:
    """Each row with the bar of its key nearest ``time_column`` in ``direction``, if close enough.

    ``exact``: whether a bar at exactly that time counts.
    """
    return pd.merge_asof(
        rows.sort_values(time_column),
        bars,
        left_on=time_column,
        right_on="event_timestamp",
        by="_key",
        direction=direction,
        tolerance=pd.Timedelta(tolerance),
        allow_exact_matches=exact,
    )


def _price_by_row(matched: pd.DataFrame) -> np.ndarray:
    """The matched bars' prices in the entity rows' order (NaN where none matched)."""
    prices: np.ndarray = matched.set_index("_row")["_price"].sort_index().to_numpy(dtype="float64")
    return prices


def add_forward_labels(
    entity_rows: pd.DataFrame,
    bars: pd.DataFrame,
    spec: LabelSpec = LabelSpec(),
    *,
    key: str = "symbol",
    timestamp_column: str = "event_timestamp",
    price_column: str | None = None,
    seen: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Entity rows (order and columns kept) with the label columns of ``spec`` added.

    A row's labels are null until ``seen`` (by default ``bars``) holds a row of its symbol at or
    after ``t + horizon``: pass every bar read, up to the latest, not only those of the windows.

    Args:
        entity_rows: One row per training example: ``key`` and ``timestamp_column`` (naive
            timestamps are UTC).
        bars: Bars of the same symbols: ``key``, ``event_timestamp``, the price column and
            optionally ``created_timestamp`` (of several bars with the same key and time, the
            latest created wins). Only bars in ``(t, t + horizon]`` of some row matter.
        spec: Horizon, tolerances, threshold and which columns.
        key: Entity key column, in both frames.
        timestamp_column: Entity rows' time column.
        price_column: Bars' price column (default: ``spec.price_column``).
        seen: ``key`` and ``event_timestamp`` of the rows that tell how far the market of each
            symbol has been seen, when ``bars`` do not (bars derived from others, such as
            minute closes stamped at the end of a minute still running: give the rows they
            were made from).
    """
    price = price_column or spec.price_column
    for frame, name in ((entity_rows, "entity_rows"), (bars, "bars")):
        if frame.empty:
            raise ValidationError(f"{name} is empty", field=name)
    for column in (key, timestamp_column):
        if column not in entity_rows.columns:
            raise ValidationError(f"entity rows have no column {column!r}", field=column)
    for column in (key, "event_timestamp", price):
        if column not in bars.columns:
            raise ValidationError(f"bars have no column {column!r}", field=column)
    seen = bars if seen is None else seen
    for column in (key, "event_timestamp"):
        if column not in seen.columns:
            raise ValidationError(f"seen rows have no column {column!r}", field="seen")

    t = _utc(entity_rows[timestamp_column], timestamp_column)
    left = pd.DataFrame(
        {"_row": np.arange(len(entity_rows)), "_key": entity_rows[key].to_numpy(), "_t": t.array}
    )
    left["_t_exit"] = left["_t"] + spec.horizon
    passed = horizon_passed(left["_key"], left["_t_exit"], seen, key)
    order = ["event_timestamp"] + (["created_timestamp"] if "created_timestamp" in bars else [])
    right = bars.assign(event_timestamp=_utc(bars["event_timestamp"], "event_timestamp"))
    right = right.sort_values(order).drop_duplicates([key, "event_timestamp"], keep="last")
    right = right[right[price].notna()]  # an empty bar (no trade yet) has no price
    right = right.rename(columns={key: "_key", price: "_price"})
    right = right[["_key", "event_timestamp", "_price"]].assign(_bar_ts=right["event_timestamp"])

    # The entry bar is strictly after t; the exit bar may be at t + horizon.
    entry = _nearest_bar(left, right, "_t", "forward", spec.max_wait, exact=False)
    exit_ = _nearest_bar(left, right, "_t_exit", "backward", spec.max_staleness, exact=True)
    exit_.loc[exit_["_bar_ts"] <= exit_["_t"], "_price"] = np.nan  # at or before t: not a label
    entry_price, exit_price = _price_by_row(entry), _price_by_row(exit_)
    exit_price = np.where(passed, exit_price, np.nan)  # not passed: a bar may still come
    forward, direction, missing = _returns(entry_price, exit_price, spec.threshold)
    labels = {
        spec.return_column: np.where(missing, np.nan, forward),
        spec.direction_column: pd.array(direction, dtype="Int8"),
    }
    labels[spec.direction_column][missing] = pd.NA
    out = entity_rows.copy()
    for name in spec.columns:
        out[name] = labels[name]
    return out


def horizon_passed(
    keys: pd.Series, until: pd.Series, seen: pd.DataFrame, key: str = "symbol"
) -> np.ndarray:
    """Whether ``seen`` holds a row of each key at or after its ``until`` (UTC timestamps).

    The pandas form of :func:`horizon_passed_sql`: the latest row of a key is at or after
    ``until``. False for a key without rows.
    """
    latest = _utc(seen["event_timestamp"], "event_timestamp").groupby(seen[key].to_numpy()).max()
    reached = pd.Series(keys.to_numpy()).map(latest)
    passed: np.ndarray = (pd.Series(until.to_numpy()) <= reached).to_numpy(dtype=bool)
    return passed


def _utc(values: pd.Series, name: str) -> pd.Series:
    try:
        converted = pd.to_datetime(values)
    except (ValueError, TypeError) as exc:
        raise ValidationError(
            f"column {name!r} does not hold timestamps: {exc}", field=name
        ) from exc
    if converted.isna().any():
        raise ValidationError(f"column {name!r} has null timestamps", field=name)
    if converted.dt.tz is None:
        # Naive timestamps are UTC by the store's convention (see featurestore.offline.entities).
        return converted.dt.tz_localize("UTC").astype("datetime64[ns, UTC]")
    return converted.dt.tz_convert("UTC").astype("datetime64[ns, UTC]")
