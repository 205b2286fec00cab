"""Direction from sequences of bars: a PyTorch LSTM (needs the ``.[torch]`` extra).

Each sample ``(symbol, t)`` is the sequence of the symbol's last ``window`` sample rows up to and
including ``t`` (the same point-in-time features as the tabular direction model, through the
same transform, standardised with training means and deviations; a missing value is 0 after
standardising). Rows with a shorter history are not trained on and score NaN. Target, split,
metrics and baselines are those of :mod:`models.training.direction`.

Serving: the registered model takes INLINE history, not the online store's latest row: a frame
with ``symbol``, ``event_timestamp`` and the raw ``view__feature`` columns, holding each symbol's
recent rows in any order; it returns P(up) per row, NaN where a row has fewer than ``window``
rows of history before it. It is therefore not served by the online ``Predict`` contract (one
feature vector per entity); the model version carries the tag ``serving=sequence``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from featurestore.errors import ConfigurationError, ValidationError
from models._mlflow import PythonModel
from models.data import Dataset, SplitSpec
from models.inputs import model_inputs
from models.pyfunc import NATIVE_ARTIFACT, ModelConfig
from models.training.base import TrainedModel, split_metrics
from models.training.direction import direction_baselines, prepare
from models.training.metrics import binary_metrics

__all__ = ["SequenceConfig", "SequenceModel", "fit_lstm", "sequences", "torch_available"]

WINDOW = 30


def torch_available() -> bool:
    """Whether PyTorch can be imported (``pip install -e '.[torch]'``)."""
    try:
        import torch  # type: ignore[import-not-found,unused-ignore]  # noqa: F401
    except ImportError:
        return False
    return True


def _torch() -> Any:
    try:
        import torch  # type: ignore[import-not-found,unused-ignore]
    except ImportError as exc:
        raise ConfigurationError("the LSTM model needs PyTorch: pip install -e '.[torch]'") from exc
    return torch


@dataclass(frozen=True)
class SequenceConfig:
    """What the sequence model needs besides its weights."""

    feature_columns: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    window: int = WINDOW
    hidden: int = 32


def sequences(frame: pd.DataFrame, config: SequenceConfig) -> tuple[np.ndarray, np.ndarray]:
    """Float32 sequences ``(n_rows, window, n_inputs)`` in row order; mask of full histories.

    Row ``i``'s sequence is its symbol's ``window`` rows up to and including ``i`` by time.
    """
    inputs = model_inputs(frame, config.feature_columns).to_numpy(dtype="float64")
    inputs = np.nan_to_num((inputs - np.asarray(config.mean)) / np.asarray(config.std))
    out = np.zeros((len(frame), config.window, inputs.shape[1]), dtype="float32")
    full = np.zeros(len(frame), dtype=bool)
    ts = pd.to_datetime(frame["event_timestamp"], utc=True)
    for _, rows in frame.groupby("symbol", sort=False).groups.items():
        positions = frame.index.get_indexer(rows)
        positions = positions[np.argsort(ts.iloc[positions].to_numpy(), kind="stable")]
        for k in range(config.window - 1, len(positions)):
            take = positions[k - config.window + 1 : k + 1]
            out[positions[k]] = inputs[take]
            full[positions[k]] = True
    return out, full


def _network(torch: Any, inputs: int, hidden: int) -> Any:
    class DirectionLSTM(torch.nn.Module):  # type: ignore[misc,name-defined,unused-ignore]
        def __init__(self) -> None:
            super().__init__()
            self.lstm = torch.nn.LSTM(inputs, hidden, batch_first=True)
            self.head = torch.nn.Linear(hidden, 1)

        def forward(self, x: Any) -> Any:
            output, _ = self.lstm(x)
            return self.head(output[:, -1, :]).squeeze(-1)

    return DirectionLSTM()


def _predict(torch: Any, net: Any, x: np.ndarray) -> np.ndarray:
    net.eval()
    with torch.no_grad():
        logits = [net(torch.from_numpy(x[i : i + 4096])) for i in range(0, len(x), 4096)]
    if not logits:
        return np.zeros(0)
    return np.asarray(torch.sigmoid(torch.cat(logits)).numpy(), dtype="float64")


class SequenceModel(PythonModel):
    """Inline history in, P(up) per row out (see the module docstring)."""

    def __init__(self, config: SequenceConfig) -> None:
        self.config = config
        self._net: Any = None

    def load_context(self, context: Any) -> None:
        """Rebuild the network and load its weights."""
        torch = _torch()
        net = _network(torch, len(self.config.mean), self.config.hidden)
        net.load_state_dict(torch.load(context.artifacts[NATIVE_ARTIFACT], weights_only=True))
        self._net = net

    def bind(self, net: Any) -> SequenceModel:
        """Use an in-memory network."""
        self._net = net
        return self

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> np.ndarray:
        """P(up) per row; NaN without a full window of history."""
        frame = model_input.reset_index(drop=True)
        x, full = sequences(frame, self.config)
        scores = np.full(len(frame), np.nan)
        scores[full] = _predict(_torch(), self._net, x[full])
        return scores


@dataclass
class TrainedSequenceModel(TrainedModel):
    """A fitted LSTM: its registered form is a :class:`SequenceModel`."""

    sequence: SequenceConfig | None = None

    @property
    def wrapper(self) -> PythonModel:
        assert self.sequence is not None
        return SequenceModel(self.sequence).bind(self.native)

    def unbound(self) -> PythonModel:
        assert self.sequence is not None
        return SequenceModel(self.sequence)

    def save_native(self, directory: str) -> str:
        path = f"{directory}/{NATIVE_ARTIFACT}.pt"
        _torch().save(self.native.state_dict(), path)
        return path

    def input_example(self) -> pd.DataFrame:
        columns = ["symbol", "event_timestamp", *self.config.feature_columns]
        frame = self.dataset.frame.loc[self.split.train, columns]
        first = frame["symbol"].iloc[0]
        example = frame[frame["symbol"] == first].head(WINDOW + 2).copy()
        example["event_timestamp"] = example["event_timestamp"].dt.tz_convert(None)
        return example.astype({c: "float64" for c in self.config.feature_columns})


def fit_lstm(
    dataset: Dataset,
    spec: SplitSpec,
    seed: int,
    *,
    shuffle_labels: bool = False,
    epochs: int = 20,
    patience: int = 3,
) -> TrainedModel:
    """Train with Adam on the train split, keep the epoch best on validation loss."""
    torch = _torch()
    torch.manual_seed(seed)
    frame, split = prepare(dataset, spec, seed, shuffle_labels)
    columns = dataset.feature_columns
    inputs = model_inputs(frame, columns)
    mean = inputs[split.train].mean().fillna(0.0).to_numpy()
    std = inputs[split.train].std().replace(0.0, 1.0).fillna(1.0).to_numpy()
    config = SequenceConfig(columns, tuple(map(float, mean)), tuple(map(float, std)))
    x, full = sequences(frame, config)
    direction = frame["direction"].astype("float64").to_numpy()
    usable = np.isin(direction, (-1.0, 1.0)) & full
    y = (direction > 0).astype("float32")
    train, valid = split.train & usable, split.valid & usable
    if not train.any() or not valid.any():
        raise ValidationError("too few rows with a full history to train the LSTM", field="rows")
    net = _network(torch, x.shape[2], config.hidden)
    optimiser = torch.optim.Adam(net.parameters(), lr=1e-3)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    xt, yt = torch.from_numpy(x[train]), torch.from_numpy(y[train])
    xv, yv = torch.from_numpy(x[valid]), torch.from_numpy(y[valid])
    generator = torch.Generator().manual_seed(seed)
    best, best_state, stale = float("inf"), None, 0
    for _ in range(epochs):
        net.train()
        for batch in torch.randperm(len(xt), generator=generator).split(256):
            optimiser.zero_grad()
            loss_fn(net(xt[batch]), yt[batch]).backward()
            optimiser.step()
        net.eval()
        with torch.no_grad():
            valid_loss = float(loss_fn(net(xv), yv))
        if valid_loss < best - 1e-4:
            best, stale = valid_loss, 0
            best_state = {k: v.clone() for k, v in net.state_dict().items()}
        else:
            stale += 1
            if stale >= patience:
                break
    if best_state is not None:
        net.load_state_dict(best_state)
    p_up = np.full(len(frame), 0.5)
    p_up[full] = _predict(torch, net, x[full])
    labels = y.astype(int)
    metrics = split_metrics("model", split, usable, binary_metrics, labels, p_up)
    metrics |= direction_baselines(frame, split, usable, labels)
    params = {"window": config.window, "hidden": config.hidden, "best_valid_loss": best}
    trained = TrainedSequenceModel(
        "lstm",
        ModelConfig("lstm", "torch", columns),
        net,
        metrics,
        params | {"shuffle_labels": shuffle_labels, "seed": seed},
        inputs[train],
        dataset,
        split,
        tags={"serving": "sequence"},
    )
    trained.sequence = config
    return trained
