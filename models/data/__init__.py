"""Training data: point-in-time exports, labels after the sample time, chronological splits."""

from __future__ import annotations

from models.data.dataset import Dataset, DatasetSpec, load_dataset, read_dataset, shuffle_in_time
from models.data.source import DataWindow
from models.data.split import Split, SplitSpec, chronological_split
from models.data.targets import (
    add_forward_volatility,
    minute_closes,
    regime_classes,
    regime_edges,
)

__all__ = [
    "DataWindow",
    "Dataset",
    "DatasetSpec",
    "Split",
    "SplitSpec",
    "add_forward_volatility",
    "chronological_split",
    "load_dataset",
    "minute_closes",
    "read_dataset",
    "regime_classes",
    "regime_edges",
    "shuffle_in_time",
]
