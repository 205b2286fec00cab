"""A fitted scikit-learn random forest regressor as arrays, walked for every tree at once.

scikit-learn's ``RandomForestRegressor.predict`` dispatches one joblib task per tree; for the few
rows of a Predict call that dispatch is the cost (~1 ms per tree on this loaded 2-core machine,
~70 ms for 60 trees, measured by ``bench/bench_predict.py``). Here the trees' nodes are stacked
into arrays once, and a batch descends all trees together, one level per step (a forest of depth
6 is 6 vectorized steps). Same rule as scikit-learn's trees: the input is cast to float32, a row
goes left when its value is ``<=`` the node's threshold, a missing value where the node learnt to
send it (``missing_go_to_left``); the prediction is the mean of the trees' leaf values.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["StackedForest"]


class StackedForest:
    """The trees of a fitted ``RandomForestRegressor`` (one output), stacked."""

    def __init__(self, forest: Any) -> None:
        """Stack the nodes of ``forest.estimators_``."""
        trees = [estimator.tree_ for estimator in forest.estimators_]
        width = max(tree.node_count for tree in trees)
        shape = (len(trees), width)
        self.feature = np.full(shape, -2, dtype=np.intp)
        self.threshold = np.zeros(shape)
        self.left = np.zeros(shape, dtype=np.intp)
        self.right = np.zeros(shape, dtype=np.intp)
        self.missing_left = np.zeros(shape, dtype=bool)
        self.value = np.zeros(shape)
        for t, tree in enumerate(trees):
            n = tree.node_count
            self.feature[t, :n] = tree.feature
            self.threshold[t, :n] = tree.threshold
            self.left[t, :n] = tree.children_left
            self.right[t, :n] = tree.children_right
            self.missing_left[t, :n] = np.asarray(tree.missing_go_to_left, dtype=bool)
            self.value[t, :n] = tree.value[:, 0, 0]
        self.depth = max(tree.max_depth for tree in trees)
        # Flat copies, children as flat positions: one take() per array per level.
        self._offsets = np.arange(len(trees)) * width
        self._feature = self.feature.reshape(-1)
        self._threshold = self.threshold.reshape(-1)
        self._left = (self.left + self._offsets[:, None]).reshape(-1)
        self._right = (self.right + self._offsets[:, None]).reshape(-1)
        self._missing_left = self.missing_left.reshape(-1)
        self._value = self.value.reshape(-1)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """The forest's prediction for each row of ``x`` (rows x the forest's features)."""
        rows = np.asarray(x, dtype=np.float32).astype(np.float64)
        n, width = rows.shape
        flat_rows = rows.reshape(-1)
        # Node ids as flat positions in the stacked arrays: tree t's node k is t * nodes + k.
        node = np.repeat(self._offsets, n).reshape(-1, n)
        row_start = (np.arange(n) * width)[None, :]
        feature, threshold = self._feature, self._threshold
        left, right, missing_left = self._left, self._right, self._missing_left
        for _ in range(self.depth):
            f = feature.take(node)
            leaf = f < 0
            values = flat_rows.take(row_start + np.where(leaf, 0, f))
            go_left = np.where(
                np.isnan(values), missing_left.take(node), values <= threshold.take(node)
            )
            node = np.where(leaf, node, np.where(go_left, left.take(node), right.take(node)))
        out: np.ndarray = self._value.take(node).sum(axis=0) / len(self._offsets)
        return out
