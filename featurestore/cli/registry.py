"""``featurestore registry apply|plan|list``: the Feast registry of the store."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import click

from featurestore.cli._options import option_group
from featurestore.cli._options import project_option
from featurestore.config import load_settings

if TYPE_CHECKING:
    from featurestore.definitions import Definitions
    from featurestore.definitions import StreamComputation

__all__ = ["describe", "registry"]


def _repo_options(verb: str) -> Callable[[click.decorators.FC], click.decorators.FC]:
    """--project and --repo, as apply and plan take them."""
    return option_group(
        project_option,
        click.option(
            "--repo",
            type=click.Path(exists=True, file_okay=False, path_type=Path),
            default=None,
            help=f"The Feast repo to {verb} (default: registry/ of the source tree).",
        ),
    )


@click.group()
def registry() -> None:
    """Register entities, feature views and services with Feast, and list them."""


@registry.command()
@_repo_options("apply")
def apply(project: str | None, repo: Path | None) -> None:
    """Apply what the Feast repo defines (validated first) and create the offline tables."""
    from featurestore.apply import apply_repo
    from featurestore.definitions import PROJECT
    from featurestore.definitions import REPO_PATH
    from featurestore.definitions import load_repo
    from featurestore.definitions import validate_definitions
    from featurestore.definitions.snapshot import cached_definitions
    from featurestore.errors import FeatureStoreError
    from featurestore.ingest.kinds import register_event_schemas
    from featurestore.stack import Stack

    settings = load_settings()
    try:
        # The repo is read and checked before any server is asked: a mistake in the
        # declarations is found with the schema registry and PostgreSQL down.
        validate_definitions(load_repo(repo or REPO_PATH, project or PROJECT))
        # The store's own event topics get their bundled schemas (as `make run` does); a
        # topic of the user's own still needs its producer to have registered one.
        register_event_schemas(settings)
        result = apply_repo(settings, repo or REPO_PATH, project or PROJECT)
        # Kept beside the stack, where the processors restarted below and the gRPC servers
        # following the registry read them without importing Feast.
        cached_definitions(settings, project or PROJECT)
    except FeatureStoreError as exc:
        click.echo(f"registry apply failed: {exc}", err=True)
        sys.exit(1)
    click.echo(f"applied {result.objects} objects to Feast project {result.project!r}")
    for table, how in result.tables.items():
        click.echo(f"  offline table {table}: {how}")
    if result.changes is not None:
        for line in result.changes.lines(applied=True):
            click.echo(f"  {line}")
    if (project or PROJECT) == PROJECT and result.topics != frozenset():
        # A processor reads the definitions when it starts: a new view is then backfilled from
        # the log by the stream while the others go on (`featurestore registry list`). Only
        # the processors of the topics whose views changed: the others go on undisturbed.
        try:
            local = Stack(settings)  # with a processor for a topic the views now read
            restarted = local.restart_processors(result.topics)
            started = local.start_new_processors(result.topics)
        except FeatureStoreError as exc:
            click.echo(f"restarting the processors failed: {exc}", err=True)
            sys.exit(1)
        if restarted:
            click.echo(f"restarted {', '.join(restarted)} to compute what was applied")
        if started:
            click.echo(f"started {', '.join(started)} for the topics it reads (supervised)")


@registry.command()
@_repo_options("plan")
@click.option("--json", "as_json", is_flag=True, help="Print the plan as one JSON object.")
def plan(project: str | None, repo: Path | None, as_json: bool) -> None:
    """Show what `registry apply` would change, writing nothing (a dry run of apply).

    The repo is checked as apply checks it; then each entity, feature view and feature service
    to add (+), change (~, field by field: old -> new) or remove (-) is listed, and each of the
    store's own event schemas (which apply registers first) that the schema registry would
    refuse. Exits 1 when apply would refuse the repo, a change or a schema (the reason on
    stderr), 0 otherwise.
    """
    from featurestore.apply import plan_definitions
    from featurestore.definitions import PROJECT
    from featurestore.definitions import REPO_PATH
    from featurestore.definitions import load_repo
    from featurestore.errors import FeatureStoreError
    from featurestore.ingest.kinds import own_event_schemas

    settings = load_settings()
    path = repo or REPO_PATH
    try:
        # Read and validated before any server is asked, as apply does.
        definitions = load_repo(path, project or PROJECT)
        # apply registers the store's own event schemas first (register_event_schemas): a
        # plan counts them as there and asks the registry whether it would accept each.
        own_schemas = own_event_schemas(settings)
        changes = plan_definitions(settings, definitions, path, registered_first=own_schemas)
    except FeatureStoreError as exc:
        click.echo(f"registry plan failed: {exc}", err=True)
        sys.exit(1)
    if as_json:
        click.echo(changes.to_json_text())
    else:
        for line in changes.lines():
            click.echo(line)
    for change in changes.refused:
        click.echo(f"registry plan: apply would refuse: {change.refused}", err=True)
    if changes.refused:
        sys.exit(1)


def _stream_lines(stream: StreamComputation) -> list[str]:
    source = stream.source
    rows = "running (as of every event)" if stream.running else "window_end"
    lines = [
        f"    stream: topic {source.topic} (source {source.name}, entity {source.entity_field},"
        f" time {source.timestamp_field}, lateness {source.watermark_delay},"
        f" id {source.id_field or 'none'})  tile={stream.tile}  rows={rows}",
    ]
    if stream.upstream is not None:
        lines.append(f"      events: the window-end rows of {stream.upstream} (chained)")
    else:
        lines += [f"      column {name} = {text}" for name, text in source.columns.items()]
    lines += [f"      {a.name} = {a.describe()}" for a in stream.aggregations]
    lines += [f"      {name} = {text}  (derived)" for name, text in stream.derived.items()]
    return lines


def describe(defs: Definitions) -> list[str]:
    """The lines ``registry list`` prints: entities, feature views and feature services.

    A stream view also shows how it is computed: its topic, tile and rows, its computed
    columns, each aggregation (function, column, window, slide) and each derived expression.
    """
    lines = [f"project {defs.project}", "entities:"]
    lines += [f"  {e.name} (join key {e.join_key}, {e.value_type.value})" for e in defs.entities]
    lines.append("feature views:")
    for view in defs.views:
        src = view.source
        lines.append(
            f"  {view.name}  ttl={view.ttl}  table={src.table} "
            f"(ts {src.timestamp_field}, created {src.created_timestamp_column}, "
            f"partitions per {src.partition_interval})  entities={','.join(view.entities)}"
            + ("" if view.online else "  offline only (online=False)")
        )
        if view.tags:
            lines.append("    tags: " + ", ".join(f"{k}={v}" for k, v in sorted(view.tags.items())))
        if view.stream is not None:
            lines += _stream_lines(view.stream)
        lines += [f"    {f.name}: {f.value_type.value}" for f in view.features]
    lines.append("feature services:")
    lines += [f"  {s.name}: {', '.join(map(str, s.features))}" for s in defs.services]
    return lines


@registry.command(name="list")
@project_option
def list_(project: str | None) -> None:
    """List entities, feature views (fields, TTL, table, computation) and feature services."""
    from featurestore.definitions import PROJECT
    from featurestore.definitions import load_definitions
    from featurestore.errors import FeatureStoreError

    try:
        defs = load_definitions(load_settings(), project or PROJECT)
    except FeatureStoreError as exc:
        click.echo(f"registry list failed: {exc}", err=True)
        sys.exit(1)
    for line in describe(defs):
        click.echo(line)
    click.echo("computation (processor state against the log):")
    for line in _progress_lines(defs):
        click.echo(line)


def _progress_lines(defs: Definitions) -> list[str]:
    from featurestore.errors import FeatureStoreError
    from featurestore.stack.processors import event_processors
    from processors.progress import view_progress

    settings = load_settings()
    names = {p.topic: p.processor for p in event_processors(settings)}
    lines = []
    for topic in sorted({v.stream.source.topic for v in defs.views if v.stream is not None}):
        processor = names.get(topic, "features")
        topic_views = replace(defs, views=tuple(
            v for v in defs.views if v.stream is not None and v.stream.source.topic == topic
        ))  # fmt: skip
        try:
            found = view_progress(settings, topic_views, processor)
        except FeatureStoreError as exc:
            lines.append(f"  topic {topic}: unknown ({exc})")
            continue
        lines += [f"  {p.view}: {p.describe()} (processor {processor})" for p in found]
    return lines
