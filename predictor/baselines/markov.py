"""The second seed's Markov state-transition detector, as a baseline.

A host's state at t is its features discretised: each of a few telling features is cut
into ``levels`` bins at training quantiles, and the bins combine into one state id. On
the training windows the detector counts, with Laplace smoothing,

    P(s_t | s_{t-1})                 the transition probabilities between states, and
    P(y_{t+lead} = k | s_t)          how often a state leads to fault class k,

refined to second order, P(y | s_{t-1}, s_t), where a pair was seen often enough. A
host is flagged when its likely next transition leads to a fault state, or when its last
transition was improbable (P(s_t | s_{t-1}) < ``eps``): then its score is at least the
fault rate that followed improbable transitions in training. The fault type is the most
likely fault class. The threshold is the best F1 on the training and validation windows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ftmoe.contract.dataset import Dataset
from ftmoe.predictor.base import WEIGHTS_FILE, Prediction, Predictor, TrainOptions
from ftmoe.predictor.data import Splits

STATE_FEATURES = (
    "cpu_utilisation",
    "cpu_frequency_ratio",
    "memory_used_fraction",
    "memory_major_faults_per_second",
    "disk_used_fraction",
    "disk_io_utilisation",
)


class MarkovDetector(Predictor):
    kind: ClassVar[str] = "markov"

    def __init__(self, levels: int = 3, eps: float = 0.01, min_pair: int = 20):
        super().__init__()
        self.levels, self.eps, self.min_pair = levels, eps, min_pair
        self.used: list[str] = []
        self.edges: np.ndarray = np.zeros((0, 0))  # [len(used), levels - 1] bin edges
        self.transition = np.zeros((0, 0), dtype=np.float32)  # [S, S] P(s_t | s_{t-1})
        self.outcome = np.zeros((0, 0), dtype=np.float32)  # [S, K+1] P(y_{t+lead} | s_t)
        self.pair_outcome: dict[int, np.ndarray] = {}  # s_prev * S + s -> P(y | pair)
        self.surprise_risk = 0.0

    @property
    def n_states(self) -> int:
        return self.levels ** len(self.used)

    def states(self, features: np.ndarray) -> np.ndarray:
        """[T, H, F] raw (this model's feature order) -> [T, H] state ids."""
        cols = [self.feature_names.index(n) for n in self.used]
        s = np.zeros(features.shape[:2], dtype=np.int64)
        for j, c in enumerate(cols):
            s = s * self.levels + np.digitize(features[..., c], self.edges[j])
        return s

    def fit(self, ds: Dataset, splits: Splits, options: TrainOptions, progress: bool = True) -> dict[str, Any]:
        self.feature_names, self.class_names = list(ds.feature_names), list(ds.class_names)
        self.window, self.lead = max(2, options.window), options.lead
        self.used = [n for n in STATE_FEATURES if n in self.feature_names] or self.feature_names[:4]
        train_end = int(splits.train.max()) + 1
        x = ds.features[:train_end]
        qs = np.linspace(0, 1, self.levels + 1)[1:-1]
        self.edges = np.array([np.quantile(x[..., self.feature_names.index(n)], qs) for n in self.used])
        s = self.states(ds.features)
        S, K1 = self.n_states, len(self.class_names)
        ends = splits.train
        prev, cur = s[ends - 1].ravel(), s[ends].ravel()
        target = self.targets(ds, ends).ravel()
        trans = np.ones((S, S), dtype=np.float64)  # Laplace
        np.add.at(trans, (prev, cur), 1.0)
        self.transition = (trans / trans.sum(axis=1, keepdims=True)).astype(np.float32)
        out = np.ones((S, K1), dtype=np.float64)
        np.add.at(out, (cur, target), 1.0)
        self.outcome = (out / out.sum(axis=1, keepdims=True)).astype(np.float32)
        pair = prev * S + cur
        self.pair_outcome = {}
        keys, counts = np.unique(pair, return_counts=True)
        for key in keys[counts >= self.min_pair]:
            hits = target[pair == key]
            self.pair_outcome[int(key)] = ((np.bincount(hits, minlength=K1) + 1.0) / (len(hits) + K1)).astype(np.float32)
        surprising = self.transition[prev, cur] < self.eps
        self.surprise_risk = float((target[surprising] > 0).mean()) if surprising.any() else 0.0
        self.info = {"states": S, "seen_pairs": len(self.pair_outcome), "surprise_risk": self.surprise_risk}
        return dict(self.info)

    def _score(self, s: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        prev, cur = s[ends - 1], s[ends]  # [N, H]
        probs = self.outcome[cur]  # [N, H, K+1]
        if self.pair_outcome:
            pair = prev * self.n_states + cur
            for idx in zip(*np.nonzero(np.isin(pair, list(self.pair_outcome)))):
                probs[idx] = self.pair_outcome[int(pair[idx])]
        risk = 1.0 - probs[..., 0]
        surprise = self.transition[prev, cur] < self.eps
        risk = np.where(surprise, np.maximum(risk, self.surprise_risk), risk)
        types = probs[..., 1:] / np.maximum(probs[..., 1:].sum(axis=-1, keepdims=True), 1e-12)
        return risk, types

    def raw_predict(self, features: np.ndarray, migrations: np.ndarray, ends: np.ndarray) -> Prediction:
        score, types = self._score(self.states(features), np.asarray(ends))
        return Prediction(score, types, self.threshold)

    # -- files ------------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        return {
            "levels": self.levels,
            "eps": self.eps,
            "min_pair": self.min_pair,
            "used": self.used,
            "edges": self.edges.tolist(),
            "surprise_risk": self.surprise_risk,
            "pair_outcome": {str(k): v.tolist() for k, v in self.pair_outcome.items()},
        }

    def save_weights(self, folder: Path) -> None:
        from safetensors.numpy import save_file

        save_file({"transition": self.transition, "outcome": self.outcome}, str(folder / WEIGHTS_FILE))

    def load_state(self, state: dict[str, Any], folder: Path) -> None:
        from safetensors.numpy import load_file

        self.levels, self.eps, self.min_pair = int(state["levels"]), float(state["eps"]), int(state["min_pair"])
        self.used, self.edges = list(state["used"]), np.array(state["edges"])
        self.surprise_risk = float(state["surprise_risk"])
        self.pair_outcome = {int(k): np.array(v, dtype=np.float32) for k, v in state["pair_outcome"].items()}
        tensors = load_file(str(folder / WEIGHTS_FILE))
        self.transition, self.outcome = tensors["transition"], tensors["outcome"]
