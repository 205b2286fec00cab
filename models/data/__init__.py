"""Training data: point-in-time exports, labels after the sample time, chronological splits."""

from __future__ import annotations

from models.data.dataset import Dataset
from models.data.dataset import DatasetSpec
from models.data.dataset import load_dataset
from models.data.dataset import read_dataset
from models.data.dataset import shuffle_in_time
from models.data.source import DataWindow
from models.data.split import Split
from models.data.split import SplitSpec
from models.data.split import chronological_split
from models.data.targets import add_forward_volatility
from models.data.targets import minute_closes
from models.data.targets import regime_classes
from models.data.targets import regime_edges

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
