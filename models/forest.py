"""Tree ensembles as stacked arrays, walked for every tree at once (Predict's few rows).

scikit-learn's ``RandomForestRegressor.predict`` dispatches one joblib task per tree; for the few
rows of a Predict call that dispatch is the cost (~1 ms per tree on this loaded 2-core machine,
~70 ms for 60 trees, measured by ``bench/bench_predict.py``). XGBoost's ``inplace_predict`` has a
fixed cost per call of ~0.25-0.9 ms here (its proxy matrix, checks and predictor set-up), for 78
trees of depth 3 and one row. Here the trees' nodes are stacked into arrays once, and a batch
descends all trees together, one level per step (a forest of depth 6 is 6 vectorized steps).

The rules are each library's own. Inputs are cast to float32, as both libraries compare in it.

- :class:`StackedForest` (scikit-learn): a row goes left when its value is ``<=`` the node's
  threshold, a missing value where the node learnt to send it (``missing_go_to_left``); the
  prediction is the mean of the trees' leaf values. Equal to scikit-learn's bit for bit (tested).
- :class:`StackedBooster` (XGBoost ``gbtree``, ``binary:logistic``, one output): left when the
  value is ``<`` the split condition, a missing value to the node's default side; the margin is
  the base score's logit plus the leaves, accumulated tree by tree in float32 as XGBoost's CPU
  predictor does, then XGBoost's float32 sigmoid. Equal to ``inplace_predict``'s margins bit for
  bit and to its probabilities within one float32 ulp (bit for bit on 99.98% of rows; tested);
  any other objective or booster is refused (:func:`stacked_booster` returns None and the caller
  keeps XGBoost's own predict).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["StackedBooster", "StackedForest", "stacked_booster"]


@dataclass(frozen=True)
class _Tree:
    """One tree's nodes; a leaf has feature -1 and its value in ``value``."""

    feature: np.ndarray
    threshold: np.ndarray
    left: np.ndarray
    right: np.ndarray
    missing_left: np.ndarray
    value: np.ndarray
    depth: int


class _StackedTrees:
    """Trees' nodes in flat arrays; :meth:`leaves` walks a batch through all trees at once.

    A leaf is its own child on both sides, so a walk of ``depth`` steps needs no test for leaves;
    the children are interleaved (left at ``2k``, right at ``2k + 1``), so a step is a take of
    ``2 * node + goes_right``. Missing values are looked at only when the batch has some.
    """

    def __init__(self, trees: Sequence[_Tree], *, strictly_less: bool) -> None:
        width = max(len(tree.feature) for tree in trees)
        size = len(trees) * width
        self._offsets = np.arange(len(trees)) * width
        self._feature = np.zeros(size, dtype=np.intp)
        self._threshold = np.zeros(size)
        self._missing_right = np.zeros(size, dtype=bool)
        self._value = np.zeros(size)
        self._children = np.repeat(np.arange(size), 2)  # unused slots and leaves: themselves
        for offset, tree in zip(self._offsets.tolist(), trees, strict=True):
            n = len(tree.feature)
            inner = np.asarray(tree.feature) >= 0
            at = offset + np.arange(n)
            self._feature[at] = np.where(inner, tree.feature, 0)
            self._threshold[at] = tree.threshold
            self._missing_right[at] = ~np.asarray(tree.missing_left, dtype=bool)
            self._value[at] = tree.value
            self._children[2 * at[inner]] = offset + np.asarray(tree.left)[inner]
            self._children[2 * at[inner] + 1] = offset + np.asarray(tree.right)[inner]
        self.depth = max(tree.depth for tree in trees)
        # Left when value <= threshold (scikit-learn) or value < threshold (XGBoost).
        self._goes_right = np.greater_equal if strictly_less else np.greater

    def leaves(self, x: np.ndarray) -> np.ndarray:
        """Trees x rows: the value of the leaf each row of ``x`` reaches in each tree."""
        rows = np.asarray(x, dtype=np.float32).astype(np.float64)
        n, width = rows.shape
        flat_rows = rows.reshape(-1)
        missing = bool(np.isnan(flat_rows).any())
        # Node ids as flat positions in the stacked arrays: tree t's node k is t * nodes + k.
        node = np.repeat(self._offsets, n).reshape(-1, n)
        row_start = (np.arange(n) * width)[None, :]
        feature, threshold, children = self._feature, self._threshold, self._children
        for _ in range(self.depth):
            values = flat_rows.take(row_start + feature.take(node))
            right = self._goes_right(values, threshold.take(node))
            if missing:
                right = np.where(np.isnan(values), self._missing_right.take(node), right)
            node = children.take(2 * node + right)
        leaves: np.ndarray = self._value.take(node)
        return leaves

    @property
    def count(self) -> int:
        """The number of trees."""
        return len(self._offsets)


class StackedForest:
    """The trees of a fitted ``RandomForestRegressor`` (one output), stacked."""

    def __init__(self, forest: Any) -> None:
        """Stack the nodes of ``forest.estimators_``."""
        trees = []
        for estimator in forest.estimators_:
            tree = estimator.tree_
            trees.append(
                _Tree(
                    np.asarray(tree.feature),
                    np.asarray(tree.threshold),
                    np.asarray(tree.children_left),
                    np.asarray(tree.children_right),
                    np.asarray(tree.missing_go_to_left, dtype=bool),
                    np.asarray(tree.value[:, 0, 0]),
                    int(tree.max_depth),
                )
            )
        self._trees = _StackedTrees(trees, strictly_less=False)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """The forest's prediction for each row of ``x`` (rows x the forest's features)."""
        out: np.ndarray = self._trees.leaves(x).sum(axis=0) / self._trees.count
        return out


def _depth(left: np.ndarray, right: np.ndarray) -> int:
    """The levels below the root (0), level by level: no assumption on the nodes' numbering."""
    depth, level = 0, [0]
    while True:
        level = [int(c) for n in level if left[n] >= 0 for c in (left[n], right[n])]
        if not level:
            return depth
        depth += 1


class StackedBooster:
    """The trees of an XGBoost binary logistic ``gbtree``, stacked (see the module docstring)."""

    def __init__(self, trees: Sequence[_Tree], base_margin: np.float32) -> None:
        """Use :func:`stacked_booster`."""
        # A one-leaf tree first: the sum starts from the base margin, as XGBoost's does.
        zero = np.zeros(1, dtype=np.intp)
        leaf = np.full(1, -1, dtype=np.intp)
        base = _Tree(
            leaf, np.zeros(1), zero, zero, np.zeros(1, dtype=bool), np.array([base_margin]), 0
        )
        self._trees = _StackedTrees([base, *trees], strictly_less=True)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """P(1) for each row of ``x`` (rows x the booster's features), float32 as XGBoost's."""
        leaves = self._trees.leaves(x).astype(np.float32)
        margin = np.cumsum(leaves, axis=0, dtype=np.float32)[-1]  # from the base, tree by tree
        # exp in float64 rounded to float32: a correctly rounded expf, as glibc's (NumPy's own
        # float32 exp differs by an ulp in ~15% of rows).
        e = np.exp(-np.minimum(margin, np.float32(88.7)).astype(np.float64)).astype(np.float32)
        out: np.ndarray = np.float32(1.0) / (e + np.float32(1.0))
        return out


def stacked_booster(booster: Any, trees: tuple[int, int]) -> StackedBooster | None:
    """``booster``'s trees in ``trees`` (XGBoost's ``iteration_range``; (0, 0): all) stacked.

    None when the model is not one :class:`StackedBooster` computes exactly as XGBoost does
    (another objective or booster, several outputs, categorical splits).
    """
    learner = json.loads(booster.save_raw("json"))["learner"]
    params = learner["learner_model_param"]
    model = learner["gradient_booster"].get("model", {})
    if (
        learner["objective"]["name"] != "binary:logistic"
        or learner["gradient_booster"]["name"] != "gbtree"
        or params.get("num_class", "0") != "0"
        or params.get("num_target", "1") != "1"
        or model.get("gbtree_model_param", {}).get("num_parallel_tree", "1") != "1"
    ):
        return None
    stored = model["trees"]
    start, end = trees
    chosen = stored[start : end or len(stored)]
    if not chosen or any(tree.get("categories_nodes") for tree in chosen):
        return None
    base = float(params["base_score"].strip("[]"))
    one = np.float32(1.0)
    # XGBoost's ProbToMargin in float32: -logf(1 / base - 1).
    base_margin = -np.float32(np.log(np.float64(one / np.float32(base) - one)))
    stacked = []
    for tree in chosen:
        left = np.asarray(tree["left_children"], dtype=np.intp)
        right = np.asarray(tree["right_children"], dtype=np.intp)
        is_leaf = left < 0
        conditions = np.asarray(tree["split_conditions"], dtype=np.float32).astype(np.float64)
        stacked.append(
            _Tree(
                np.where(is_leaf, -1, np.asarray(tree["split_indices"], dtype=np.intp)),
                conditions,
                left,
                right,
                np.asarray(tree["default_left"], dtype=bool),
                np.where(is_leaf, conditions, 0.0),
                _depth(left, right),
            )
        )
    return StackedBooster(stacked, base_margin)
