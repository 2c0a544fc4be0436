"""CMODLB style: predict each host's next state, cluster the predicted states with
k-means, and read the fault risk and type off the cluster.

A ridge regression maps a host's window (normalised) to its next interval's features;
k-means groups the predicted states of the training windows; each cluster keeps the
share of its windows that turned faulty and their fault-type mix. A host's score is the
distance-weighted fault share of the clusters near its predicted state.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import load_file, save_file

from ftmoe.contract.dataset import Dataset
from ftmoe.predictor.base import WEIGHTS_FILE, Prediction, Predictor, TrainOptions
from ftmoe.predictor.baselines.common import windows
from ftmoe.predictor.data import Normaliser, Splits


class CMODLB(Predictor):
    kind = "cmodlb"
    normalises = True
    clusters = 16

    def __init__(self) -> None:
        super().__init__()
        self.normaliser: Normaliser | None = None
        self.arrays: dict[str, np.ndarray] = {}

    def _design(self, x: np.ndarray, ends: np.ndarray) -> np.ndarray:
        w = windows(x, ends, self.window)  # [N, W, H, F]
        flat = w.transpose(0, 2, 1, 3).reshape(len(ends) * x.shape[1], -1)
        return np.hstack([flat, np.ones((flat.shape[0], 1))])

    def _next_state(self, x: np.ndarray, ends: np.ndarray) -> np.ndarray:
        return self._design(x, ends) @ self.arrays["regression"]

    def fit(self, ds: Dataset, splits: Splits, options: TrainOptions, progress: bool = True) -> dict[str, Any]:
        from sklearn.cluster import KMeans

        self.feature_names, self.class_names = list(ds.feature_names), list(ds.class_names)
        self.window, self.lead = options.window, options.lead
        self.normaliser = Normaliser.fit(ds.features[: int(splits.train.max()) + 1], options.normalisation)
        x = self.normaliser(ds.features)
        train = splits.train
        A = self._design(x, train)
        target = x[train + 1].reshape(-1, x.shape[2])
        reg = np.linalg.solve(A.T @ A + 1e-2 * np.eye(A.shape[1]), A.T @ target)
        self.arrays["regression"] = reg
        pred = A @ reg
        km = KMeans(n_clusters=self.clusters, n_init=4, random_state=options.seed).fit(pred)
        y = self.targets(ds, train).reshape(-1)
        K = len(self.class_names)
        counts = np.zeros((self.clusters, K))
        np.add.at(counts, (km.labels_, y), 1)
        self.arrays["centroids"] = km.cluster_centers_
        self.arrays["fault_share"] = 1 - counts[:, 0] / np.clip(counts.sum(axis=1), 1, None)
        types = counts[:, 1:] + 1e-3
        self.arrays["type_mix"] = types / types.sum(axis=1, keepdims=True)
        return {"clusters": self.clusters}

    def raw_predict(self, features: np.ndarray, migrations: np.ndarray, ends: np.ndarray) -> Prediction:
        assert self.normaliser is not None
        ends = np.asarray(ends)
        N, H = len(ends), features.shape[1]
        pred = self._next_state(self.normaliser(features), ends)
        d = ((pred[:, None, :] - self.arrays["centroids"][None]) ** 2).sum(-1)
        w = np.exp(-(d - d.min(axis=1, keepdims=True)))
        w /= w.sum(axis=1, keepdims=True)
        fault = (w @ self.arrays["fault_share"]).reshape(N, H)
        types = (w @ self.arrays["type_mix"]).reshape(N, H, -1)
        return Prediction(fault, types, self.threshold)

    def state(self) -> dict[str, Any]:
        assert self.normaliser is not None
        return {"normalisation": self.normaliser.to_dict()}

    def save_weights(self, folder: Path) -> None:
        save_file({k: np.ascontiguousarray(v) for k, v in self.arrays.items()}, str(folder / WEIGHTS_FILE))

    def load_state(self, state: dict[str, Any], folder: Path) -> None:
        self.normaliser = Normaliser(**state["normalisation"])
        self.arrays = load_file(str(folder / WEIGHTS_FILE))
