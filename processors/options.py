"""Options of a processor run: which project and topic, how Spark runs it, where it keeps state."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from featurestore.config import Settings
from featurestore.definitions import PROJECT
from featurestore.errors import ConfigurationError
from featurestore.processor_files import status_file

__all__ = ["ENGINES", "Engine", "ProcessorOptions"]

Engine = Literal["spark", "kafka"]
ENGINES: tuple[Engine, ...] = ("spark", "kafka")
"""What reads the topic and schedules the steps: Spark's micro-batches
(:mod:`processors.spark.stream`) or a Kafka consumer (:mod:`processors.kafka_engine`)."""


@dataclass(frozen=True)
class ProcessorOptions:
    """How one processor runs."""

    name: str = "features"
    """Names the checkpoint folder: two processors with different names never share state."""
    project: str = PROJECT
    """Feast project the feature views are read from."""
    topic: str | None = None
    """The event topic whose views it computes (default: ``settings.topics.trades``)."""
    master: str = "local[*]"
    """Spark master URL: ``local[*]`` or a cluster (``spark://host:7077``)."""
    engine: Engine = "spark"
    """``spark`` or ``kafka`` (local only: a consumer in this process, no Spark)."""
    poll_ms: float = 5.0
    """Kafka engine: how long a poll waits for records before the batch is processed."""
    commit_ms: int = 1000
    """Kafka engine: how often each partition's rows and state are committed to PostgreSQL
    (:class:`processors.interval_runner.IntervalRunner`); Redis is written after every batch.
    0: after every batch, as the Spark engine does."""
    trigger_ms: int = 0
    """Micro-batch trigger interval; 0: the next batch starts as soon as the last ends and new
    records are there (Spark then polls the topic every 10 ms)."""
    max_offsets_per_trigger: int | None = 200_000
    """Records per micro-batch at most (bounds the first batches of a backlog)."""
    starting_offsets: str = "earliest"
    """Where partitions without stored state start: ``earliest``, ``latest`` or Spark's JSON."""
    partitions: tuple[int, ...] | None = None
    """The topic's partitions this application processes (None: all). Several applications of
    one processor split a topic with disjoint sets; starting one claims its partitions
    (:func:`processors.state_table.claim_partitions`), fencing off whoever held them."""
    on_executors: bool | None = None
    """Run the per-partition step in Spark's executor tasks (True) or on the driver (False);
    None: on the executors when the master is a cluster, on the driver in local mode (where it
    measures faster: no Python worker per task)."""

    @property
    def runs_on_executors(self) -> bool:
        """Where the step runs (see :attr:`on_executors`)."""
        if self.on_executors is not None:
            return self.on_executors
        return not self.master.startswith("local")

    def __post_init__(self) -> None:
        """Refuse a name, engine or master that cannot run, naming the option."""
        if not self.name or "/" in self.name or self.name.startswith("."):
            raise ConfigurationError(f"processor name {self.name!r} must be a plain folder name")
        if self.engine not in ENGINES:
            raise ConfigurationError(
                f"--engine {self.engine!r}: choose one of {', '.join(ENGINES)}"
            )
        if self.engine == "kafka" and not self.master.startswith("local"):
            raise ConfigurationError(
                f"--engine kafka runs in this process and takes no Spark master; --master "
                f"{self.master} needs --engine spark"
            )
        if self.engine == "kafka" and self.on_executors:
            raise ConfigurationError(
                "--step-on executors needs --engine spark (the kafka engine has no executors)"
            )
        if self.poll_ms <= 0:
            raise ConfigurationError(f"--poll-ms {self.poll_ms}: give a time > 0")
        if self.commit_ms < 0:
            raise ConfigurationError(f"--commit-ms {self.commit_ms}: give a time >= 0")
        if self.trigger_ms < 0:
            raise ConfigurationError("--trigger-ms must be >= 0")
        if self.partitions is not None and (
            not self.partitions or min(self.partitions) < 0
            or len(set(self.partitions)) != len(self.partitions)
        ):  # fmt: skip
            raise ConfigurationError(
                f"--partitions {self.partitions}: give distinct partition numbers >= 0"
            )

    @property
    def instance(self) -> str:
        """This application among the processor's: its name, and its partitions if it has some."""
        if self.partitions is None:
            return self.name
        return f"{self.name}-p{'-'.join(map(str, sorted(self.partitions)))}"

    def topic_of(self, settings: Settings) -> str:
        """The topic to read."""
        return self.topic or settings.topics.trades

    def status_path(self, settings: Settings) -> Path:
        """The status file this application writes (one each where several split a topic)."""
        return status_file(settings, self.name, None if self.partitions is None else self.instance)
