"""The LSTM's serving runtime: its weights as an ONNX graph, run by ONNX Runtime.

Training is NumPy (:mod:`models.training.lstm_net`); serving is ONNX Runtime's fused LSTM kernel,
because NumPy's per-operation overhead (a dozen small array operations per time step) made one
30-step sequence cost ~1 ms on this machine, while the fused kernel runs the whole sequence in one
call. The graph is ``Transpose -> LSTM -> Squeeze -> MatMul -> Add -> Sigmoid``: sequences in
(batch x steps x inputs, float32) with the initial state ``h0``, ``c0`` (batch x hidden; zeros for a
whole sequence), P(up) and the final state ``h_n``, ``c_n`` out. Predict runs the history once,
keeps the state, and runs only the newest step per call (:meth:`LSTMSession.state`; the split
run gives the same outputs as the whole sequence, tested). The registered model and Predict both
score through this runtime, so Predict's output equals the offline model's; the graph's agreement
with the NumPy network is a unit test.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from models.training.lstm_net import LSTMWeights

__all__ = ["LSTMSession", "import_onnxruntime", "to_onnx"]

_OPSET = 17
_TORCH_TO_ONNX_GATES = (0, 3, 1, 2)
"""torch's gate blocks (input, forget, cell, output) in ONNX's order (input, output, forget,
cell)."""


def _gates(matrix: np.ndarray, hidden: int) -> np.ndarray:
    blocks = [matrix[k * hidden : (k + 1) * hidden] for k in _TORCH_TO_ONNX_GATES]
    return np.concatenate(blocks, axis=0)


def to_onnx(weights: LSTMWeights) -> bytes:
    """The serialized ONNX model of the network (see the module docstring)."""
    from onnx import TensorProto
    from onnx import helper
    from onnx import numpy_helper

    hidden, inputs = weights.hidden, weights.inputs
    f32 = "float32"
    initializers = [
        numpy_helper.from_array(_gates(weights.w_ih, hidden)[None].astype(f32), "W"),
        numpy_helper.from_array(_gates(weights.w_hh, hidden)[None].astype(f32), "R"),
        numpy_helper.from_array(
            np.concatenate([_gates(weights.b, hidden), np.zeros(4 * hidden)])[None].astype(f32),
            "B",
        ),
        numpy_helper.from_array(weights.w_out.reshape(hidden, 1).astype(f32), "w_out"),
        numpy_helper.from_array(weights.b_out.astype(f32), "b_out"),
        numpy_helper.from_array(np.array([0], dtype="int64"), "axis0"),
        numpy_helper.from_array(np.array([1], dtype="int64"), "axis1"),
    ]
    nodes = [
        helper.make_node("Transpose", ["x"], ["x_steps_first"], perm=[1, 0, 2]),
        helper.make_node("Unsqueeze", ["h0", "axis0"], ["initial_h"]),
        helper.make_node("Unsqueeze", ["c0", "axis0"], ["initial_c"]),
        helper.make_node(
            "LSTM",
            ["x_steps_first", "W", "R", "B", "", "initial_h", "initial_c"],
            ["", "h_last", "c_last"],
            hidden_size=hidden,
        ),
        helper.make_node("Squeeze", ["h_last", "axis0"], ["h"]),
        helper.make_node("Squeeze", ["c_last", "axis0"], ["c_n"]),
        helper.make_node("Identity", ["h"], ["h_n"]),
        helper.make_node("MatMul", ["h", "w_out"], ["logit_column"]),
        helper.make_node("Add", ["logit_column", "b_out"], ["logit_biased"]),
        helper.make_node("Squeeze", ["logit_biased", "axis1"], ["logit"]),
        helper.make_node("Sigmoid", ["logit"], ["p_up"]),
    ]
    graph = helper.make_graph(
        nodes,
        "direction_lstm",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "steps", inputs]),
            helper.make_tensor_value_info("h0", TensorProto.FLOAT, ["batch", hidden]),
            helper.make_tensor_value_info("c0", TensorProto.FLOAT, ["batch", hidden]),
        ],
        [
            helper.make_tensor_value_info("p_up", TensorProto.FLOAT, ["batch"]),
            helper.make_tensor_value_info("h_n", TensorProto.FLOAT, ["batch", hidden]),
            helper.make_tensor_value_info("c_n", TensorProto.FLOAT, ["batch", hidden]),
        ],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", _OPSET)])
    model.ir_version = 8
    serialized: bytes = model.SerializeToString()
    return serialized


def import_onnxruntime() -> Any:
    """ONNX Runtime, its usage telemetry off unless ``ORT_DISABLE_TELEMETRY`` says otherwise.

    The Linux wheel (1.30) starts Microsoft's 1DS telemetry when it loads: events for
    ``mobile.events.data.microsoft.com`` and an empty ``/tmp/mat-debug-<pid>.log`` per process.
    A feature store's servers send nothing to a vendor unasked, so the variable is set before the
    first import (the library reads it when it loads) and events are disabled after it (in case
    something imported the library earlier).
    """
    os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
    import onnxruntime  # type: ignore[import-untyped]

    if os.environ["ORT_DISABLE_TELEMETRY"] == "1":
        onnxruntime.disable_telemetry_events()
    return onnxruntime


class LSTMSession:
    """An ONNX Runtime session of :func:`to_onnx`'s graph (one thread: calls are small)."""

    def __init__(self, model: bytes) -> None:
        """A session of the serialized graph ``model``."""
        onnxruntime = import_onnxruntime()
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self._session: Any = onnxruntime.InferenceSession(
            model, options, providers=["CPUExecutionProvider"]
        )
        self.hidden = int(self._session.get_inputs()[1].shape[1])

    def _run(
        self, names: list[str], x: np.ndarray, h: np.ndarray | None, c: np.ndarray | None
    ) -> list[np.ndarray]:
        zeros = np.zeros((len(x), self.hidden), dtype="float32")
        feed = {
            "x": np.ascontiguousarray(x, dtype="float32"),
            "h0": zeros if h is None else np.ascontiguousarray(h, dtype="float32"),
            "c0": zeros if c is None else np.ascontiguousarray(c, dtype="float32"),
        }
        out: list[np.ndarray] = self._session.run(names, feed)
        return out

    def p_up(
        self, x: np.ndarray, h: np.ndarray | None = None, c: np.ndarray | None = None
    ) -> np.ndarray:
        """P(up) of each sequence of ``x`` (batch x steps x inputs) from state ``h``, ``c``."""
        if len(x) == 0:
            return np.zeros(0)
        (out,) = self._run(["p_up"], x, h, c)
        return np.asarray(out, dtype="float64")

    def state(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The state ``(h, c)`` (batch x hidden, float32) after the sequences of ``x``."""
        if len(x) == 0 or x.shape[1] == 0:
            zeros = np.zeros((len(x), self.hidden), dtype="float32")
            return zeros, zeros.copy()
        h, c = self._run(["h_n", "c_n"], x, None, None)
        return h, c
