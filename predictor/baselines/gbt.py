"""Gradient-boosted trees on windowed features: what a practical ML engineer tries first.

scikit-learn's HistGradientBoostingClassifier learns the four classes (none, cpu, memory,
disk) from each host-window's last value, mean, slope and range of every feature. Model
files keep the fitted trees as plain arrays (safetensors) and predict by walking them
here, so loading never unpickles a scikit-learn object.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.numpy import load_file, save_file

from ftmoe.contract.dataset import Dataset
from ftmoe.predictor.base import WEIGHTS_FILE, Prediction, Predictor, TrainOptions
from ftmoe.predictor.baselines.common import tabular
from ftmoe.predictor.data import Splits

FIELDS = ("value", "feature_idx", "num_threshold", "missing_go_to_left", "left", "right", "is_leaf")


class GradientBoostedTrees(Predictor):
    kind = "gbt"

    def __init__(self) -> None:
        super().__init__()
        self.trees: dict[str, np.ndarray] = {}
        self.baseline = np.zeros(1)
        self.n_classes = 0
        self.n_iter = 0

    def fit(self, ds: Dataset, splits: Splits, options: TrainOptions, progress: bool = True) -> dict[str, Any]:
        from sklearn.ensemble import HistGradientBoostingClassifier

        self.feature_names, self.class_names = list(ds.feature_names), list(ds.class_names)
        self.window, self.lead = options.window, options.lead
        train = splits.train
        if options.max_train_windows and len(train) > options.max_train_windows:
            train = np.sort(np.random.default_rng(options.seed).choice(train, options.max_train_windows, replace=False))
        X = tabular(ds.features, train, self.window)
        y = self.targets(ds, train).reshape(-1)
        clf = HistGradientBoostingClassifier(
            max_iter=200,
            learning_rate=0.1,
            max_leaf_nodes=31,
            class_weight="balanced",
            early_stopping=True,
            validation_fraction=0.1,
            random_state=options.seed,
        )
        clf.fit(X, y)
        present = [int(c) for c in clf.classes_]
        self._export(clf, present, len(self.class_names))
        self.info = {"iterations": self.n_iter}
        return {"iterations": self.n_iter}

    def _export(self, clf: Any, present: list[int], n_classes: int) -> None:
        """Flatten every tree into padded arrays [iterations, classes, nodes]."""
        preds = clf._predictors  # scikit-learn keeps the fitted trees here
        self.n_iter, k = len(preds), len(preds[0])
        width = max(t.nodes.shape[0] for it in preds for t in it)
        out = {
            f: np.zeros((self.n_iter, n_classes, width), dtype=np.float64 if f in ("value", "num_threshold") else np.int64) for f in FIELDS
        }
        out["is_leaf"][:] = 1  # padding and absent classes: a single leaf of value 0
        base = np.full(n_classes, -1e9)  # classes never seen in training: never predicted
        raw_base = np.asarray(clf._baseline_prediction).reshape(-1)
        for j, cls in enumerate(present):
            base[cls] = raw_base[j] if k > 1 else raw_base[0]
        for i, it in enumerate(preds):
            for j, tree in enumerate(it):
                cls = present[j] if k > 1 else present[1]
                n = tree.nodes.shape[0]
                for f in FIELDS:
                    out[f][i, cls, :n] = tree.nodes[f]
        if k == 1:  # binary: scikit-learn keeps one tree per iteration for the positive class
            base[present[0]] = 0.0
        self.trees, self.baseline, self.n_classes = out, base, n_classes

    def _raw(self, X: np.ndarray) -> np.ndarray:
        t = self.trees
        raw = np.tile(self.baseline, (X.shape[0], 1))
        rows = np.arange(X.shape[0])
        for i in range(self.n_iter):
            for c in range(self.n_classes):
                node = np.zeros(X.shape[0], dtype=np.int64)
                leaf = t["is_leaf"][i, c][node].astype(bool)
                while not leaf.all():
                    f = t["feature_idx"][i, c][node]
                    x = X[rows, f]
                    left = np.where(np.isnan(x), t["missing_go_to_left"][i, c][node] == 1, x <= t["num_threshold"][i, c][node])
                    nxt = np.where(left, t["left"][i, c][node], t["right"][i, c][node])
                    node = np.where(leaf, node, nxt)
                    leaf = t["is_leaf"][i, c][node].astype(bool)
                raw[:, c] += t["value"][i, c][node]
        return raw

    def raw_predict(self, features: np.ndarray, migrations: np.ndarray, ends: np.ndarray) -> Prediction:
        ends = np.asarray(ends)
        N, H = len(ends), features.shape[1]
        raw = self._raw(tabular(features, ends, self.window))
        prob = torch.softmax(torch.from_numpy(raw), dim=-1).numpy().reshape(N, H, -1)
        fault = 1.0 - prob[..., 0]
        types = prob[..., 1:] / np.clip(prob[..., 1:].sum(axis=-1, keepdims=True), 1e-12, None)
        return Prediction(fault, types, self.threshold)

    def state(self) -> dict[str, Any]:
        return {"n_iter": self.n_iter, "n_classes": self.n_classes}

    def save_weights(self, folder: Path) -> None:
        save_file({**{f: np.ascontiguousarray(v) for f, v in self.trees.items()}, "baseline": self.baseline}, str(folder / WEIGHTS_FILE))

    def load_state(self, state: dict[str, Any], folder: Path) -> None:
        arrays = load_file(str(folder / WEIGHTS_FILE))
        self.baseline = arrays.pop("baseline")
        self.trees = arrays
        self.n_iter, self.n_classes = int(state["n_iter"]), int(state["n_classes"])
