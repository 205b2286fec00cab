"""``featurestore replay``: a topic read again from its start, its events decoded.

The dead-letter topic is read as dead letters, each with its reason, origin and value.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import click

from featurestore.cli._options import AWARE_TIME

if TYPE_CHECKING:
    from featurestore.config import Settings
    from featurestore.events import SchemaStore

__all__ = ["replay"]


@dataclass(frozen=True)
class _Reading:
    """What one ``replay`` reads (``topic`` through ``settings``' Kafka) and how it prints."""

    settings: Settings
    store: SchemaStore
    topic: str
    follow: bool
    as_json: bool
    limit: int | None
    since: datetime | None


@click.command("replay")
@click.argument("topic")
@click.option("--follow", is_flag=True, help="Keep reading new records after the end.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per record.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Stop after N records.")
@click.option(
    "--since",
    type=AWARE_TIME,
    default=None,
    help="Start each partition at its first record timestamped at or after this time (ISO 8601"
    " with a UTC offset), not at offset 0. An event's Kafka timestamp is its event time; a dead"
    " letter's, the time it was dead-lettered.",
)
@click.option(
    "--dead-letters",
    "dead_letters",
    is_flag=True,
    help="Read TOPIC as dead letters: reason, origin and value of each (the default for the"
    " settings' dead-letter topic).",
)
@click.option(
    "--reason",
    metavar="TEXT",
    default=None,
    help="Dead letters only: those whose reason contains TEXT (case-insensitive), such as a"
    " reason code (late, invalid, unparsable, ...).",
)
def replay(
    topic: str,
    follow: bool,
    as_json: bool,
    limit: int | None,
    since: datetime | None,
    dead_letters: bool,
    reason: str | None,
) -> None:
    """Re-read TOPIC from offset 0 of every partition (or from --since), decoding each record.

    The dead-letter topic is read as dead letters: per record its offset, time, reason, origin
    (topic, partition and offset, processor or ingest source and line) and value (Avro
    decoded, else text, else a hex preview and its length).
    """
    from featurestore.config import load_settings
    from featurestore.errors import FeatureStoreError
    from featurestore.events import ConfluentSchemaStore

    settings = load_settings()
    as_dead_letters = dead_letters or topic == settings.topics.dead_letter
    if reason is not None and not as_dead_letters:
        raise click.UsageError(
            f"--reason filters dead letters: {topic} is not the dead-letter topic"
            f" ({settings.topics.dead_letter}); add --dead-letters to read it as one"
        )
    store = ConfluentSchemaStore.from_settings(settings.schema_registry)
    reading = _Reading(settings, store, topic, follow, as_json, limit, since)
    try:
        if as_dead_letters:
            _print_dead_letters(reading, reason)
        else:
            _print_events(reading)
    except FeatureStoreError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        store.close()


def _print_events(reading: _Reading) -> None:
    """Print the events of the topic (JSON lines), then how many were decoded."""
    from dataclasses import asdict

    from featurestore.events import LoggedEvent
    from featurestore.events import replay_topic

    decoded = undecodable = 0
    by_schema: dict[int, int] = {}
    kafka = reading.settings.kafka.connection
    for item in replay_topic(
        kafka, reading.store, reading.topic, follow=reading.follow, since=reading.since
    ):
        if isinstance(item, LoggedEvent):
            decoded += 1
            by_schema[item.schema_id] = by_schema.get(item.schema_id, 0) + 1
            if reading.as_json:
                row = {
                    "partition": item.partition,
                    "offset": item.offset,
                    "schema_id": item.schema_id,
                    "type": type(item.event).__name__,
                    "event": asdict(item.event),
                }
                click.echo(json.dumps(row, default=str))
        else:
            undecodable += 1
            if reading.as_json:
                error = {"partition": item.partition, "offset": item.offset, "error": item.reason}
                click.echo(json.dumps(error))
        if reading.limit is not None and decoded + undecodable >= reading.limit:
            break
    if not reading.as_json:
        schemas = ", ".join(f"id {k}: {v}" for k, v in sorted(by_schema.items())) or "none"
        counts = f"{_count(decoded, 'event')} decoded ({schemas}), {undecodable} undecodable"
        click.echo(f"{reading.topic}: {counts}")


def _print_dead_letters(reading: _Reading, reason: str | None) -> None:
    """Print the topic's dead letters (those whose reason contains ``reason``)."""
    from featurestore.events import AvroDeserializer
    from featurestore.events.dead_letters import dead_letter_json
    from featurestore.events.dead_letters import dead_letter_text
    from featurestore.events.dead_letters import decode_value
    from featurestore.events.dead_letters import parse_dead_letter
    from featurestore.events.replay import replay_messages

    wanted = reason.casefold() if reason is not None else None
    decoder = AvroDeserializer(reading.store)
    read = shown = 0
    by_code: dict[str, int] = {}
    kafka = reading.settings.kafka.connection
    for message in replay_messages(
        kafka, reading.topic, follow=reading.follow, since=reading.since
    ):
        letter = parse_dead_letter(message)
        read += 1
        code = letter.code or "(none)"
        by_code[code] = by_code.get(code, 0) + 1
        if wanted is not None and wanted not in (letter.reason or "").casefold():
            continue
        value = decode_value(letter.value, decoder)
        shown += 1
        as_text = dead_letter_json if reading.as_json else dead_letter_text
        click.echo(as_text(letter, value))
        if reading.limit is not None and shown >= reading.limit:
            break
    if not reading.as_json:
        most_first = sorted(by_code.items(), key=lambda item: (-item[1], item[0]))
        codes = ", ".join(f"{code} {n}" for code, n in most_first)
        matching = f" matching --reason {reason!r}" if reason is not None else ""
        stopped = (
            ", stopped at --limit" if reading.limit is not None and shown >= reading.limit else ""
        )
        click.echo(
            f"{reading.topic}: {_count(read, 'dead letter')} read, {shown} shown{matching}{stopped}"
            f" (by reason code: {codes or 'none'})"
        )


def _count(n: int, noun: str) -> str:
    """``1 event``, ``2 events``."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
