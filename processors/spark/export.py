"""The point-in-time export on Spark, for entity sets beyond what one PostgreSQL server joins.

The rule is :mod:`featurestore.offline.base`'s, the PostgreSQL export's: for an entity row at
``t`` and each view, the latest feature row of its key with ``event_timestamp <= t`` (and
``>= t - ttl`` when the view has a TTL), ties on ``event_timestamp`` going to the latest
``created_timestamp``; null when there is none. Output rows keep the entity rows' order and
columns, the features appended under the same names as the PostgreSQL export gives them.

How:

* each view's table is read over JDBC in parallel, one Spark partition per slice of the time
  range the entity rows need (``[min t - ttl, max t]``), only the key, times and features;
* the entity rows and the feature rows of the view are put in one frame and ordered per key by
  (time, feature rows first, ``created_timestamp``): the last feature row at or before an entity
  row in that order is the one the rule picks (feature rows sort before entity rows of the same
  time because the bound is inclusive, and the latest created last among rows of one time).
  ``last(..., ignorenulls)`` over the rows so far carries it to the entity row; the TTL is
  checked after;
* the views' columns are joined back on the entity row's ordinal (taken when the file is read,
  in file order) and the rows written as Parquet in that order.

All rows of one key meet in one task (the window is per key): a key with more rows than an
executor holds is the limit of this layout. Labels are computed by the PostgreSQL export only.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Sequence
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from pathlib import Path
from typing import Any

from psycopg import sql

from featurestore.config import Settings
from featurestore.definitions import Definitions
from featurestore.errors import BackendUnavailableError
from featurestore.errors import ConfigurationError
from featurestore.errors import FeatureStoreError
from featurestore.errors import ValidationError
from featurestore.offline import ExportStats
from featurestore.offline import PostgresOfflineStore
from featurestore.offline import TrainingRequest
from featurestore.offline._query import ViewJoin
from processors.options import ProcessorOptions
from processors.spark.executors import start_session

__all__ = ["export_parquet_spark", "jdbc_url"]

_ORD = "_fs_ord"
_KEY = "_fs_key"
_TS = "_fs_ts"
_KIND = "_fs_kind"
_CREATED = "_fs_created"
_ROW = "_fs_row"
_MATCH_TS = "_fs_match_ts"


def jdbc_url(settings: Settings) -> tuple[str, dict[str, str]]:
    """The offline store's JDBC URL and connection properties (password among them)."""
    pg = settings.postgres
    props = {
        "user": pg.user,
        "password": pg.password.get_secret_value(),
        "driver": "org.postgresql.Driver",
        "sslmode": pg.sslmode,
        "connectTimeout": str(pg.connect_timeout_s),
        "tcpKeepAlive": "true",  # pgjdbc has no idle setting: the OS's (two hours by default)
        "options": pg.connect_kwargs()["options"],  # JIT off, as on every connection of ours
    }
    if pg.ssl_root_cert is not None:
        props["sslrootcert"] = str(pg.ssl_root_cert)
    return f"jdbc:postgresql://{pg.host}:{pg.port}/{pg.database}", props


def export_parquet_spark(
    settings: Settings,
    definitions: Definitions,
    entities: Path,
    request: TrainingRequest,
    out: Path,
    *,
    master: str = "local[*]",
    read_partitions: int = 8,
) -> ExportStats:
    """Join the entity rows of ``entities`` (.parquet or .csv) on Spark; Parquet files in ``out``.

    ``out`` is a folder of Parquet files (Spark's layout), written under a ``.partial`` name and
    renamed once complete; an existing ``out`` is replaced then.

    Raises:
        ValidationError: the request or the entity rows are wrong (the field is named).
        ConfigurationError: an offline table is missing.
        BackendUnavailableError: PostgreSQL cannot be reached from Spark.
        FeatureStoreError: the Spark job failed otherwise.
    """
    if read_partitions < 1:
        raise ValidationError("read_partitions must be positive", field="read_partitions")
    if request.labels is not None:
        raise ValidationError(
            "labels are computed by the PostgreSQL export only; drop them or use it",
            field="labels",
        )
    plan = PostgresOfflineStore(settings.postgres.dsn, definitions).plan(request)
    started = time.perf_counter()
    spark, _ = start_session(settings, ProcessorOptions(name="export", master=master))
    conf = {
        "spark.sql.shuffle.partitions": str(read_partitions),
        "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
    }
    previous = {key: spark.conf.get(key, None) for key in conf}
    for key, value in conf.items():
        spark.conf.set(key, value)
    partial = out.with_name(out.name + ".partial")
    try:
        shutil.rmtree(partial, ignore_errors=True)
        frame = _read_entities(spark, entities, plan.join_key, request, plan.output_names)
        bounds = _time_bounds(frame)
        url, props = jdbc_url(settings)
        result = frame
        for join in plan.joins:
            features = _read_view(spark, url, props, join, bounds, read_partitions)
            result = result.join(_as_of(frame, features, join), _ORD, "left")
        result = result.orderBy(_ORD).drop(_ORD, _KEY, _TS)
        result.write.parquet(str(partial))
        rows = result.sparkSession.read.parquet(str(partial)).count()
        if out.exists():
            shutil.rmtree(out) if out.is_dir() else out.unlink()
        partial.replace(out)
    except FeatureStoreError:
        raise
    except Exception as exc:
        raise _spark_error(exc) from exc
    finally:
        shutil.rmtree(partial, ignore_errors=True)
        for key, value in previous.items():
            if value is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, value)
    files = len(list(out.glob("*.parquet")))
    return ExportStats(rows, files, time.perf_counter() - started, out)


def _read_entities(
    spark: Any, path: Path, join_key: str, request: TrainingRequest, output_names: list[str]
) -> Any:
    """The entity rows with an ordinal (file order), the key and the UTC time beside them."""
    from pyspark.sql import functions as fn
    from pyspark.sql import types as st

    if not path.is_file():
        raise ValidationError(f"entity file {path} does not exist", field="entities")
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        frame = spark.read.parquet(str(path))
    elif suffix == ".csv":
        frame = spark.read.csv(str(path), header=True, inferSchema=True)
    else:
        raise ValidationError(
            f"entity file {path} must be .parquet or .csv, not {suffix or 'no suffix'}",
            field="entities",
        )
    names = frame.columns
    ts_column = request.timestamp_column
    for column in (join_key, ts_column):
        if column not in names:
            raise ValidationError(
                f"entity rows have no column {column!r} (columns: {', '.join(names)})",
                field=column,
            )
    key_type = frame.schema[join_key].dataType
    if not isinstance(key_type, st.StringType):
        raise ValidationError(
            f"entity column {join_key!r} must hold strings, not {key_type.simpleString()}",
            field=join_key,
        )
    ts_type = frame.schema[ts_column].dataType
    if isinstance(ts_type, st.TimestampNTZType) and not request.allow_naive_timestamps:
        raise ValidationError(
            f"entity column {ts_column!r} has timestamps without a timezone; "
            "give timezone-aware timestamps (they are compared in UTC)",
            field=ts_column,
        )
    if not isinstance(ts_type, st.TimestampType | st.TimestampNTZType | st.StringType):
        raise ValidationError(
            f"entity column {ts_column!r} must hold timestamps (or ISO 8601 strings), not "
            f"{ts_type.simpleString()}",
            field=ts_column,
        )
    clash = [name for name in output_names if name in names]
    if clash:
        raise ValidationError(
            f"entity columns {clash} have the names of requested features", field=clash[0]
        )
    # The session's time zone is UTC: a timestamp without a zone is taken as UTC.
    return frame.select(
        "*",
        fn.monotonically_increasing_id().alias(_ORD),
        fn.col(join_key).alias(_KEY),
        fn.col(ts_column).cast(st.TimestampType()).alias(_TS),
    )


def _time_bounds(frame: Any) -> tuple[datetime, datetime]:
    """The entity rows' earliest and latest time; ValidationError on a null key or time."""
    from pyspark.sql import functions as fn

    row = frame.agg(
        fn.min(_TS).alias("lo"),
        fn.max(_TS).alias("hi"),
        fn.sum(fn.col(_KEY).isNull().cast("long")).alias("null_keys"),
        fn.sum(fn.col(_TS).isNull().cast("long")).alias("null_times"),
        fn.count(fn.lit(1)).alias("rows"),
    ).first()
    if row is None or not row["rows"]:
        raise ValidationError("no entity rows given", field="entities")
    if row["null_keys"]:
        raise ValidationError(f"{row['null_keys']} entity rows have a null key", field="entities")
    if row["null_times"]:
        raise ValidationError(
            f"{row['null_times']} entity rows have a null or unreadable timestamp "
            "(ISO 8601 expected)",
            field="entities",
        )
    lo, hi = row["lo"], row["hi"]
    return _utc(lo), _utc(hi)


def _utc(value: datetime) -> datetime:
    # pyspark hands timestamps back as naive local times; the session and driver run in UTC.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _slices(
    lo: datetime | None, hi: datetime, parts: int
) -> list[tuple[datetime | None, datetime]]:
    """``parts`` consecutive ranges from ``lo`` up to ``hi``.

    One range without a lower end when ``lo`` is None (no TTL: every earlier row may be the
    latest).
    """
    if lo is None or parts == 1 or hi <= lo:
        return [(lo, hi)]
    step = (hi - lo) / parts
    edges = [lo + step * i for i in range(parts)] + [hi]
    return [(edges[i], edges[i + 1]) for i in range(parts)]


def _predicates(ts_column: str, lo: datetime | None, hi: datetime, parts: int) -> list[str]:
    """One WHERE clause per JDBC partition: disjoint slices of ``[lo, hi]`` covering it all."""
    ts = sql.Identifier(ts_column).as_string(None)
    clauses = []
    for i, (start, end) in enumerate(_slices(lo, hi, parts)):
        upper = f"{ts} <= '{end.isoformat()}'::timestamptz"
        if start is None:
            clauses.append(upper)
        else:
            op = ">=" if i == 0 else ">"
            clauses.append(f"{ts} {op} '{start.isoformat()}'::timestamptz AND {upper}")
    return clauses


def _read_view(
    spark: Any,
    url: str,
    props: dict[str, str],
    join: ViewJoin,
    bounds: tuple[datetime, datetime],
    parts: int,
) -> Any:
    """The view's rows the entity rows can reach, read over JDBC in ``parts`` time slices."""
    from pyspark.sql import functions as fn

    src = join.view.source
    ttl = join.view.ttl
    lo: datetime | None = bounds[0] - ttl if ttl > timedelta(0) else None
    columns: Sequence[str] = [
        join.join_key,
        src.timestamp_field,
        src.created_timestamp_column,
        *(f.name for f in join.features),
    ]
    table = sql.SQL("(SELECT {} FROM {}) AS src").format(
        sql.SQL(", ").join(map(sql.Identifier, columns)),
        sql.Identifier(*src.table.split(".", 1)),
    )
    predicates = _predicates(src.timestamp_field, lo, bounds[1], max(1, parts))
    options = {**props, "fetchsize": "10000"}
    frame = spark.read.jdbc(url, table.as_string(None), predicates=predicates, properties=options)
    return frame.select(
        fn.col(join.join_key).alias(_KEY),
        fn.col(src.timestamp_field).alias(_TS),
        fn.col(src.created_timestamp_column).alias(_CREATED),
        *(fn.col(f.name) for f in join.features),
    )


def _as_of(entities: Any, features: Any, join: ViewJoin) -> Any:
    """``(ordinal, features...)`` of each entity row: the view's row the rule picks, or nulls."""
    from pyspark.sql import Window
    from pyspark.sql import functions as fn

    names = [f.name for f in join.features]
    row = fn.struct(fn.col(_TS).alias(_MATCH_TS), *(fn.col(n) for n in names))
    feature_side = features.select(
        _KEY,
        _TS,
        fn.lit(0).alias(_KIND),
        _CREATED,
        fn.lit(None).cast("long").alias(_ORD),
        row.alias(_ROW),
    )
    entity_side = entities.select(
        _KEY,
        _TS,
        fn.lit(1).alias(_KIND),
        fn.lit(None).cast("timestamp").alias(_CREATED),
        _ORD,
        fn.lit(None).cast(feature_side.schema[_ROW].dataType).alias(_ROW),
    )
    window = (
        Window.partitionBy(_KEY)
        .orderBy(_TS, _KIND, _CREATED)
        .rowsBetween(Window.unboundedPreceding, Window.currentRow)
    )
    matched = (
        feature_side.unionByName(entity_side)
        .withColumn(_ROW, fn.last(_ROW, ignorenulls=True).over(window))
        .where(fn.col(_KIND) == 1)
    )
    seconds = join.view.ttl.total_seconds()
    found = fn.col(f"{_ROW}.{_MATCH_TS}").isNotNull()
    if seconds > 0:
        oldest = fn.col(_TS) - fn.make_dt_interval(secs=fn.lit(seconds).cast("decimal(18,6)"))
        found = found & (fn.col(f"{_ROW}.{_MATCH_TS}") >= oldest)
    return matched.select(
        _ORD,
        *(
            fn.when(found, fn.col(f"{_ROW}.{name}")).alias(out)
            for name, out in zip(names, join.output_names, strict=True)
        ),
    )


def _spark_error(exc: Exception) -> FeatureStoreError:
    """A Spark or JDBC failure as the store's error, its first line kept, no Java trace."""
    text = str(getattr(exc, "desc", None) or exc)
    java = getattr(exc, "java_exception", None)
    if java is not None:
        text = str(java.toString())
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    if "does not exist" in first and "relation" in first:
        return ConfigurationError(
            f"an offline table is missing ({first}); run `featurestore registry apply`"
        )
    if "Connection refused" in first or "password authentication failed" in first:
        return BackendUnavailableError(f"Spark export: PostgreSQL cannot be reached: {first}")
    if "TIMESTAMP(NANOS" in text:
        return ValidationError(
            "entity file: Spark reads timestamps in micro- or milliseconds, not nanoseconds; "
            "write the file with pyarrow's coerce_timestamps='us'",
            field="entities",
        )
    return FeatureStoreError(f"Spark export failed: {first}")
