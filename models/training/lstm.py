"""Direction from sequences of rows: an LSTM (trained in NumPy, served by ONNX Runtime).

Each sample ``(symbol, t)`` is the sequence of the symbol's last ``window`` sample rows up to and
including ``t`` (the same point-in-time features as the tabular direction model, through the
same transform, standardised with training means and deviations; a missing value is 0 after
standardising). Rows with a shorter history are not trained on and score NaN. Target, split,
metrics and baselines are those of :mod:`models.training.direction`.

Why NumPy for training and ONNX Runtime for serving, not PyTorch: see
:mod:`models.training.lstm_net` and :mod:`models.lstm_runtime`.

Serving, two ways, one runtime:

- the registered pyfunc takes INLINE history: a frame with ``symbol``, ``event_timestamp`` and
  the raw ``view__feature`` columns, holding each symbol's recent rows in any order; it returns
  P(up) per row, NaN where a row has fewer than ``window`` rows up to it;
- Predict reads the entity's newest ``rolling_1m`` row online and the ``window - 1`` rows before
  it from the offline store (point in time), through :class:`SequenceModel`'s
  ``sequence_state`` / ``sequence_step`` (the state after the history is kept per entity and
  newest row, so a call runs one step). Both give the same P(up) for the same rows (tested).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from featurestore.errors import ValidationError
from models._mlflow import PythonModel
from models.data import Dataset
from models.data import SplitSpec
from models.inputs import InputTransform
from models.inputs import model_inputs
from models.lstm_runtime import LSTMSession
from models.lstm_runtime import to_onnx
from models.pyfunc import NATIVE_ARTIFACT
from models.pyfunc import ConfiguredModel
from models.pyfunc import ModelConfig
from models.training.base import TrainedModel
from models.training.base import split_metrics
from models.training.direction import direction_baselines
from models.training.direction import prepare
from models.training.lstm_net import Adam
from models.training.lstm_net import LSTMWeights
from models.training.lstm_net import init_weights
from models.training.lstm_net import loss_and_grads
from models.training.metrics import binary_metrics

__all__ = ["SequenceConfig", "SequenceModel", "fit_lstm", "sequences"]

WINDOW = 30
HIDDEN = 32
SAMPLE_VIEW = "rolling_1m"
"""The view whose rows are the steps: one per closed minute (the training samples' view)."""


@dataclass(frozen=True)
class SequenceConfig:
    """What the sequence model needs besides its weights."""

    feature_columns: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    window: int = WINDOW
    hidden: int = HIDDEN
    sample_view: str = SAMPLE_VIEW


class _Steps:
    """Raw feature rows -> standardised model inputs (float32), prepared once."""

    def __init__(self, config: SequenceConfig) -> None:
        """Prepare the transform of ``config``'s columns and its standardisation."""
        self._transform = InputTransform.of(config.feature_columns)
        self._mean = np.asarray(config.mean)
        self._std = np.asarray(config.std)

    def __call__(self, raw: np.ndarray) -> np.ndarray:
        """``(..., columns)`` raw -> ``(..., inputs)`` standardised, 0 where missing."""
        flat = raw.reshape(-1, raw.shape[-1])
        x = np.nan_to_num((self._transform(flat) - self._mean) / self._std)
        out: np.ndarray = x.reshape(*raw.shape[:-1], x.shape[-1]).astype("float32")
        return out


def sequences(frame: pd.DataFrame, config: SequenceConfig) -> tuple[np.ndarray, np.ndarray]:
    """Float32 sequences ``(n_rows, window, n_inputs)`` in row order; mask of full histories.

    Row ``i``'s sequence is its symbol's ``window`` rows up to and including ``i`` by time.
    """
    raw = frame[list(config.feature_columns)].to_numpy(dtype="float64")
    inputs = _Steps(config)(raw)
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


class SequenceModel(ConfiguredModel[SequenceConfig]):
    """Inline history in, P(up) per row out; and Predict's one-step scoring (module docstring)."""

    def __init__(self, config: SequenceConfig) -> None:
        """Unbound: :meth:`load_context` (MLflow) or :meth:`bind` gives it its graph."""
        self.config = config
        self._session: LSTMSession | None = None
        self._steps: _Steps | None = None

    @classmethod
    def from_model_config(cls, config: Mapping[str, Any]) -> SequenceModel:
        """The unbound model that :meth:`model_config` describes (KeyError: a key is missing)."""
        return cls(
            SequenceConfig(
                feature_columns=tuple(config["feature_columns"]),
                mean=tuple(float(v) for v in config["mean"]),
                std=tuple(float(v) for v in config["std"]),
                window=int(config["window"]),
                hidden=int(config["hidden"]),
                sample_view=str(config["sample_view"]),
            )
        )

    def load_context(self, context: Any) -> None:
        """Load the ONNX graph of the network."""
        self.bind(Path(context.artifacts[NATIVE_ARTIFACT]).read_bytes())

    def bind(self, onnx_model: bytes) -> SequenceModel:
        """Serve a serialized ONNX graph of the network (training evaluates through it too)."""
        self._session = LSTMSession(onnx_model)
        self._steps = _Steps(self.config)
        return self

    @property
    def _runtime(self) -> LSTMSession:
        if self._session is None:
            raise ValidationError("the LSTM has no weights loaded", field="model")
        return self._session

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> np.ndarray:
        """P(up) per row; NaN without a full window of history."""
        frame = model_input.reset_index(drop=True)
        x, full = sequences(frame, self.config)
        scores = np.full(len(frame), np.nan)
        scores[full] = self._runtime.p_up(x[full])
        return scores

    # Predict's side (featurestore.service.native.SequenceScoring)

    @property
    def feature_columns(self) -> tuple[str, ...]:
        """The raw features of each step."""
        return self.config.feature_columns

    @property
    def window(self) -> int:
        """Rows per sequence, the newest included."""
        return self.config.window

    @property
    def sample_view(self) -> str:
        """The view whose rows are the steps."""
        return self.config.sample_view

    def sequence_state(self, history: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(h, c)`` after ``history`` (entities x window-1 x columns, raw)."""
        assert self._steps is not None
        return self._runtime.state(self._steps(history))

    def stack_states(self, states: list[Any]) -> tuple[np.ndarray, np.ndarray]:
        """Per-entity ``(h, c)`` as one batch."""
        return np.stack([h for h, _ in states]), np.stack([c for _, c in states])

    def split_states(self, state: Any) -> list[tuple[np.ndarray, np.ndarray]]:
        """A batch ``(h, c)`` per entity."""
        h, c = state
        return list(zip(h, c, strict=True))

    def sequence_step(self, rows: np.ndarray, state: Any) -> np.ndarray:
        """P(up) after one more step with ``rows`` (entities x columns, raw)."""
        assert self._steps is not None
        h, c = state
        return self._runtime.p_up(self._steps(rows)[:, None, :], h, c)


@dataclass
class TrainedSequenceModel(TrainedModel):
    """A fitted LSTM: its registered form is a :class:`SequenceModel`."""

    sequence: SequenceConfig | None = None
    onnx_model: bytes = b""

    @property
    def wrapper(self) -> PythonModel:
        assert self.sequence is not None
        return SequenceModel(self.sequence).bind(self.onnx_model)

    def model_config(self) -> dict[str, Any]:
        assert self.sequence is not None
        return SequenceModel(self.sequence).model_config()

    def save_native(self, directory: str) -> str:
        path = f"{directory}/{NATIVE_ARTIFACT}.onnx"
        Path(path).write_bytes(self.onnx_model)
        return path

    def input_example(self) -> pd.DataFrame:
        assert self.sequence is not None
        columns = ["symbol", "event_timestamp", *self.config.feature_columns]
        frame = self.dataset.frame.loc[self.split.train, columns]
        first = frame["symbol"].iloc[0]
        example = frame[frame["symbol"] == first].head(self.sequence.window + 2).copy()
        example["event_timestamp"] = example["event_timestamp"].dt.tz_convert(None)
        return example.astype({c: "float64" for c in self.config.feature_columns})


def _epoch(
    weights: LSTMWeights, adam: Adam, x: np.ndarray, y: np.ndarray, rng: np.random.Generator
) -> None:
    for batch in np.array_split(rng.permutation(len(x)), max(1, int(np.ceil(len(x) / 256)))):
        _, grads = loss_and_grads(weights, x[batch], y[batch])
        adam.step(weights, grads)


def fit_lstm(
    dataset: Dataset,
    spec: SplitSpec,
    seed: int,
    *,
    shuffle_labels: bool = False,
    epochs: int = 20,
    patience: int = 3,
    window: int = WINDOW,
    hidden: int = HIDDEN,
) -> TrainedModel:
    """Train with Adam on the train split, keep the epoch best on validation loss."""
    if window < 2:
        raise ValidationError(f"seq_len must be at least 2, not {window}", field="seq_len")
    if epochs < 1:
        raise ValidationError(f"epochs must be at least 1, not {epochs}", field="epochs")
    rng = np.random.default_rng(seed)
    frame, split = prepare(dataset, spec, seed, shuffle_labels)
    columns = dataset.feature_columns
    inputs = model_inputs(frame, columns)
    mean = inputs[split.train].mean().fillna(0.0).to_numpy()
    std = inputs[split.train].std().replace(0.0, 1.0).fillna(1.0).to_numpy()
    config = SequenceConfig(
        columns, tuple(map(float, mean)), tuple(map(float, std)), window=window, hidden=hidden
    )
    x, full = sequences(frame, config)
    direction = frame["direction"].astype("float64").to_numpy()
    usable = np.isin(direction, (-1.0, 1.0)) & full
    y = (direction > 0).astype("float64")
    train, valid = split.train & usable, split.valid & usable
    if not train.any() or not valid.any():
        raise ValidationError("too few rows with a full history to train the LSTM", field="rows")
    weights = init_weights(x.shape[2], hidden, rng)
    adam = Adam(weights, lr=1e-3)
    best, best_weights, stale, trained_epochs = float("inf"), weights.copy(), 0, 0
    for _ in range(epochs):
        _epoch(weights, adam, x[train], y[train], rng)
        trained_epochs += 1
        valid_loss, _ = loss_and_grads(weights, x[valid], y[valid])
        if valid_loss < best - 1e-4:
            best, best_weights, stale = valid_loss, weights.copy(), 0
        else:
            stale += 1
            if stale >= patience:
                break
    onnx_model = to_onnx(best_weights)
    p_up = np.full(len(frame), 0.5)
    p_up[full] = LSTMSession(onnx_model).p_up(x[full])  # the served runtime's scores
    labels = y.astype(int)
    metrics = split_metrics("model", split, usable, binary_metrics, labels, p_up)
    metrics |= direction_baselines(frame, split, usable, labels)
    params = {
        "window": window,
        "hidden": hidden,
        "epochs": epochs,
        "trained_epochs": trained_epochs,
        "best_valid_loss": best,
        "runtime": "onnxruntime",
    }
    trained = TrainedSequenceModel(
        "lstm",
        ModelConfig("lstm", "onnx", columns),
        best_weights,
        metrics,
        params | {"shuffle_labels": shuffle_labels, "seed": seed},
        inputs[train],
        dataset,
        split,
        tags={"serving": "sequence"},
    )
    trained.sequence = config
    trained.onnx_model = onnx_model
    return trained
