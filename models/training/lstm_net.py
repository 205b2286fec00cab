"""A one-layer LSTM with a logistic head, in NumPy: forward, backpropagation through time, Adam.

Why NumPy and not PyTorch: PyPI's Linux torch wheel pulls the CUDA libraries (measured here:
``uv pip install torch==2.13.0`` downloaded ~2.9 GB and filled a 4.5 GB virtualenv in 51 s),
so torch is an extra the CI and the server do not have, and a model that needs it could neither
be tested in CI nor served by Predict without it. The network is small (one layer, a few dozen
units, sequences of ~30 steps): its forward pass is a handful of matrix products per step, which
NumPy does as fast as torch on a CPU, and its gradient is the textbook one, checked against finite
differences in the unit tests and against ``torch.nn.LSTM`` (same weights, same outputs and
gradients) where torch is installed.

The parameters have ``torch.nn.LSTM``'s layout and gate order (input, forget, cell, output):
``w_ih`` (4H x I), ``w_hh`` (4H x H), one bias ``b`` (torch's ``b_ih + b_hh``), and the head
``w_out`` (H), ``b_out``. The model's output is the logit of the last step's hidden state.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import fields
from typing import Any

import numpy as np

__all__ = ["Adam", "LSTMWeights", "forward", "init_weights", "loss_and_grads"]


@dataclass
class LSTMWeights:
    """The parameters (float64 arrays), in ``torch.nn.LSTM``'s layout."""

    w_ih: np.ndarray
    w_hh: np.ndarray
    b: np.ndarray
    w_out: np.ndarray
    b_out: np.ndarray
    """Shape ``(1,)``."""

    @property
    def hidden(self) -> int:
        """The number of hidden units."""
        return int(self.w_hh.shape[1])

    @property
    def inputs(self) -> int:
        """The number of inputs per step."""
        return int(self.w_ih.shape[1])

    def arrays(self) -> dict[str, np.ndarray]:
        """Name -> array (what :func:`numpy.savez` writes)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_arrays(cls, arrays: Any) -> LSTMWeights:
        """From a mapping of the names of :meth:`arrays` (an ``np.load`` of a ``.npz``)."""
        return cls(**{f.name: np.asarray(arrays[f.name], dtype="float64") for f in fields(cls)})

    def copy(self) -> LSTMWeights:
        """A deep copy."""
        return LSTMWeights(**{k: v.copy() for k, v in self.arrays().items()})


def init_weights(inputs: int, hidden: int, rng: np.random.Generator) -> LSTMWeights:
    """``torch.nn.LSTM``'s initialisation: every parameter uniform in +-1/sqrt(hidden)."""
    k = 1.0 / np.sqrt(hidden)

    def uniform(*shape: int) -> np.ndarray:
        return rng.uniform(-k, k, shape)

    return LSTMWeights(
        uniform(4 * hidden, inputs),
        uniform(4 * hidden, hidden),
        uniform(4 * hidden) + uniform(4 * hidden),
        uniform(hidden),
        uniform(1),
    )


def _sigmoid(z: np.ndarray) -> np.ndarray:
    out: np.ndarray = 0.5 * (1.0 + np.tanh(0.5 * z))  # no overflow for large |z|
    return out


def _steps(weights: LSTMWeights, x: np.ndarray, keep: bool) -> tuple[np.ndarray, list[Any]]:
    """Run the cell over ``x`` (N x T x I); the last hidden state and, if ``keep``, each step's."""
    n, steps, _ = x.shape
    hidden = weights.hidden
    h = np.zeros((n, hidden))
    c = np.zeros((n, hidden))
    # The input projection of every step at once: one matrix product instead of T.
    projected = x @ weights.w_ih.T + weights.b
    w_hh_t = weights.w_hh.T
    cache: list[Any] = []
    for t in range(steps):
        z = projected[:, t, :] + h @ w_hh_t
        i = _sigmoid(z[:, :hidden])
        f = _sigmoid(z[:, hidden : 2 * hidden])
        g = np.tanh(z[:, 2 * hidden : 3 * hidden])
        o = _sigmoid(z[:, 3 * hidden :])
        c_prev, h_prev = c, h
        c = f * c_prev + i * g
        tanh_c = np.tanh(c)
        h = o * tanh_c
        if keep:
            cache.append((h_prev, c_prev, i, f, g, o, tanh_c))
    return h, cache


def forward(weights: LSTMWeights, x: np.ndarray) -> np.ndarray:
    """The logit of each sequence of ``x`` (N x T x I) -> (N,)."""
    if x.shape[0] == 0:
        return np.zeros(0)
    h, _ = _steps(weights, np.asarray(x, dtype="float64"), keep=False)
    logits: np.ndarray = h @ weights.w_out + weights.b_out[0]
    return logits


def loss_and_grads(weights: LSTMWeights, x: np.ndarray, y: np.ndarray) -> tuple[float, LSTMWeights]:
    """Mean binary cross-entropy of the logits against ``y`` (0/1), and its gradient."""
    x = np.asarray(x, dtype="float64")
    y = np.asarray(y, dtype="float64")
    n, steps, _ = x.shape
    hidden = weights.hidden
    h, cache = _steps(weights, x, keep=True)
    logits = h @ weights.w_out + weights.b_out[0]
    # log(1 + e^z) - y z, written to stay finite for large |z|
    loss = float(np.mean(np.logaddexp(0.0, logits) - y * logits))
    d_logits = (_sigmoid(logits) - y) / n
    grads = LSTMWeights(
        np.zeros_like(weights.w_ih),
        np.zeros_like(weights.w_hh),
        np.zeros_like(weights.b),
        h.T @ d_logits,
        np.array([d_logits.sum()]),
    )
    dh = np.outer(d_logits, weights.w_out)
    dc = np.zeros((n, hidden))
    dz_all = np.empty((n, steps, 4 * hidden))
    for t in range(steps - 1, -1, -1):
        h_prev, c_prev, i, f, g, o, tanh_c = cache[t]
        do = dh * tanh_c
        dc = dc + dh * o * (1.0 - tanh_c**2)
        dz = dz_all[:, t, :]
        dz[:, :hidden] = dc * g * i * (1.0 - i)
        dz[:, hidden : 2 * hidden] = dc * c_prev * f * (1.0 - f)
        dz[:, 2 * hidden : 3 * hidden] = dc * i * (1.0 - g**2)
        dz[:, 3 * hidden :] = do * o * (1.0 - o)
        grads.w_hh += dz.T @ h_prev
        dh = dz @ weights.w_hh
        dc = dc * f
    grads.w_ih = np.einsum("ntg,nti->gi", dz_all, x)
    grads.b = dz_all.sum(axis=(0, 1))
    return loss, grads


class Adam:
    """Adam (Kingma & Ba), torch's defaults: betas (0.9, 0.999), eps 1e-8."""

    def __init__(self, weights: LSTMWeights, lr: float = 1e-3) -> None:
        """Moments of zero for each parameter of ``weights``; step size ``lr``."""
        self.lr = lr
        self._m = {k: np.zeros_like(v) for k, v in weights.arrays().items()}
        self._v = {k: np.zeros_like(v) for k, v in weights.arrays().items()}
        self._t = 0

    def step(self, weights: LSTMWeights, grads: LSTMWeights) -> None:
        """Update ``weights`` in place."""
        self._t += 1
        b1, b2, eps = 0.9, 0.999, 1e-8
        for name, grad in grads.arrays().items():
            m, v = self._m[name], self._v[name]
            m *= b1
            m += (1 - b1) * grad
            v *= b2
            v += (1 - b2) * grad**2
            m_hat = m / (1 - b1**self._t)
            v_hat = v / (1 - b2**self._t)
            param = getattr(weights, name)
            param -= self.lr * m_hat / (np.sqrt(v_hat) + eps)
