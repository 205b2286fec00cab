"""The LSTM: its gradient, its ONNX runtime against the NumPy network, sequences, training."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from models.data import Dataset
from models.data import SplitSpec
from models.lstm_runtime import LSTMSession
from models.lstm_runtime import to_onnx
from models.training.lstm import SequenceConfig
from models.training.lstm import SequenceModel
from models.training.lstm import fit_lstm
from models.training.lstm import sequences
from models.training.lstm_net import forward
from models.training.lstm_net import init_weights
from models.training.lstm_net import loss_and_grads
from tests.unit.models.test_training import frame


def test_gradient_matches_finite_differences():
    rng = np.random.default_rng(0)
    weights = init_weights(3, 4, rng)
    x = rng.normal(size=(5, 6, 3))
    y = (rng.random(5) > 0.5).astype(float)
    _, grads = loss_and_grads(weights, x, y)
    for name, param in weights.arrays().items():
        analytic = grads.arrays()[name]
        for index in np.ndindex(param.shape):
            kept = param[index]
            param[index] = kept + 1e-6
            up, _ = loss_and_grads(weights, x, y)
            param[index] = kept - 1e-6
            down, _ = loss_and_grads(weights, x, y)
            param[index] = kept
            assert abs((up - down) / 2e-6 - analytic[index]) < 1e-7, (name, index)


def test_onnx_graph_computes_the_numpy_network_and_a_split_run_the_whole():
    rng = np.random.default_rng(1)
    weights = init_weights(7, 8, rng)
    x = rng.normal(size=(20, 12, 7))
    session = LSTMSession(to_onnx(weights))
    whole = session.p_up(x)
    expected = 1 / (1 + np.exp(-forward(weights, x)))
    np.testing.assert_allclose(whole, expected, atol=1e-6)
    h, c = session.state(x[:, :11])
    np.testing.assert_allclose(session.p_up(x[:, 11:], h, c), whole, atol=1e-7)
    assert session.p_up(x[:0]).shape == (0,)


def test_sequences_hold_each_symbols_past_rows_only():
    t0 = pd.Timestamp("2024-01-02 14:30", tz="UTC")
    rows = (
        pd.DataFrame(
            {
                "symbol": ["A", "B"] * 4,
                "event_timestamp": np.repeat(pd.date_range(t0, periods=4, freq="min"), 2),
                "rolling_1m__volume_ratio": [0.0, 100.0, 1.0, 101.0, 2.0, 102.0, 3.0, 103.0],
            }
        )
        .iloc[::-1]
        .reset_index(drop=True)
    )  # any row order
    config = SequenceConfig(("rolling_1m__volume_ratio",), (0.0,), (1.0,), window=3)
    x, full = sequences(rows, config)
    assert full.sum() == 4
    a_last = rows.index[(rows.symbol == "A") & (rows.event_timestamp == rows.event_timestamp.max())]
    assert x[a_last[0], :, 0].tolist() == [1.0, 2.0, 3.0]


def test_lstm_trains_scores_per_row_and_one_step_equals_the_whole_sequence():
    data = frame(n=1200, leak=1.0)
    ds = Dataset(data, tuple(c for c in data.columns if "__" in c), "direction_features_v1")
    spec = SplitSpec(gap=timedelta(minutes=6))
    trained = fit_lstm(ds, spec, seed=0, epochs=8, window=5, hidden=8)
    scores = trained.wrapper.predict(None, data)
    assert scores.shape == (len(data),)
    assert np.isnan(scores).sum() == 2 * 4  # each symbol's first window - 1 rows
    assert np.isfinite(trained.metrics["model.test.auc"])
    assert trained.metrics["model.test.auc"] > 0.6  # the leak is learnt
    # Predict's way: the state after the 4 rows before, then the newest row.
    model = trained.wrapper
    assert isinstance(model, SequenceModel)
    last = data[data.symbol == "AAA"].tail(5)[list(ds.feature_columns)].to_numpy()
    state = model.sequence_state(last[None, :4])
    step = model.sequence_step(last[None, 4], state)
    expected = scores[data[data.symbol == "AAA"].index[-1]]
    np.testing.assert_allclose(step, [expected], atol=1e-7)


def test_a_session_starts_no_vendor_telemetry(tmp_path: Path) -> None:
    """ONNX Runtime's Linux wheel writes /tmp/mat-debug-<pid>.log when its telemetry starts."""
    script = (
        "import os, numpy as np\n"
        "from models.lstm_runtime import LSTMSession, to_onnx\n"
        "from models.training.lstm_net import init_weights\n"
        "session = LSTMSession(to_onnx(init_weights(3, 4, np.random.default_rng(0))))\n"
        "print(session.p_up(np.zeros((1, 2, 3))).shape, os.getpid())\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "ORT_DISABLE_TELEMETRY"}
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=Path(__file__).resolve().parents[3],
    )
    assert done.returncode == 0, done.stderr
    shape, pid = done.stdout.split(") ")
    assert shape == "(1,"
    assert not Path(f"/tmp/mat-debug-{int(pid)}.log").exists()
