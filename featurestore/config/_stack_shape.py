"""The local stack's shape, remembered by its data folder.

How many Kafka nodes, whether Redis runs as a cluster (and of how many nodes), whether the stack
is secured: a data folder is made for one shape (Kafka formats its storage for its quorum, a
Redis Cluster keeps ``nodes.conf``, a secured stack its certificates and SCRAM users) and every
command that uses the stack must read it with that shape. A shell that did not export the
variables ``make run`` was given would otherwise see one Kafka node of three, talk to a Redis
Cluster node as to a single server, or speak plaintext to TLS listeners; ``stack down`` would
stop some nodes and leave the others running.

So ``stack up`` writes the shape it starts with to ``<data_dir>/stack.env`` (the settings file's
``KEY=value`` lines), and :func:`featurestore.config.load_settings` reads it beneath the
``FEATURESTORE_CONFIG`` file and the environment, which still win. ``make clean`` deletes it
with the data.
"""

from __future__ import annotations

from pathlib import Path

from featurestore.atomic_file import write_atomically
from featurestore.config._settings import Settings

__all__ = ["STACK_SHAPE", "stack_shape_file", "write_stack_shape"]

STACK_SHAPE = (
    "FEATURESTORE_KAFKA__BROKERS",
    "FEATURESTORE_REDIS__CLUSTER",
    "FEATURESTORE_REDIS__CLUSTER_MASTERS",
    "FEATURESTORE_REDIS__CLUSTER_REPLICAS",
    "FEATURESTORE_SECURITY__ENABLED",
)
"""The settings a data folder is made for; the only ones its shape file holds."""

_HEADER = """\
# The shape of the local stack in this folder, written by `featurestore stack up`.
# Commands using this data folder read these beneath FEATURESTORE_CONFIG and the environment.
"""


def stack_shape_file(data_dir: Path) -> Path:
    """Where the shape of the stack in ``data_dir`` is kept."""
    return data_dir / "stack.env"


def write_stack_shape(settings: Settings) -> None:
    """Record the shape ``settings`` give the local stack in its data folder.

    Written atomically: a command reading the settings meanwhile sees one shape or the other.
    """
    lines = []
    for key in STACK_SHAPE:  # FEATURESTORE_<SECTION>__<FIELD>: a number or a flag
        section, _, name = key.removeprefix("FEATURESTORE_").lower().partition("__")
        value = getattr(getattr(settings, section), name)
        lines.append(f"{key}={str(value).lower()}")
    write_atomically(stack_shape_file(settings.data_dir), _HEADER + "\n".join(lines) + "\n")
