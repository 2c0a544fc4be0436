"""Threshold and trend rules: the DFTM/PCFT/ECLB style on CPU, and PromQL predict_linear.

Each rule turns a window into a score per host; the threshold on that score is the one
with the best F1 on the training and validation windows. None of them types faults
beyond what its rule implies.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from ftmoe.predictor.base import Prediction, Predictor, TrainOptions
from ftmoe.predictor.baselines.common import column, fit_threshold, trend, windows
from ftmoe.predictor.data import Splits
from ftmoe.simulator.dataset import Dataset


class RulePredictor(Predictor):
    """A rule with no learned weights: only its threshold (and window) are fitted."""

    kind: ClassVar[str] = "rule"
    needs: ClassVar[tuple[str, ...]] = ("cpu_utilisation",)

    def scores(self, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """w [N, W, H, F] raw -> (score [N, H], type probability [N, H, K])."""
        raise NotImplementedError

    def _uniform(self, n: int, h: int) -> np.ndarray:
        k = len(self.class_names) - 1
        return np.full((n, h, k), 1.0 / k)

    def _type_for(self, name: str, n: int, h: int) -> np.ndarray:
        p = np.zeros((n, h, len(self.class_names) - 1))
        p[..., self.class_names.index(name) - 1] = 1.0
        return p

    def fit(self, ds: Dataset, splits: Splits, options: TrainOptions, progress: bool = True) -> dict[str, Any]:
        self.feature_names = list(ds.feature_names)
        self.class_names = list(ds.class_names)
        for name in self.needs:
            column(self.feature_names, name)
        self.window, self.lead = options.window, options.lead
        ends = np.concatenate([splits.train, splits.val])
        score, _ = self.scores(windows(ds.features, ends, self.window))
        self.threshold = fit_threshold(score, ds, splits, self.lead)
        self.info = {"threshold": self.threshold}
        return {"threshold": self.threshold}

    def predict_arrays(self, features: np.ndarray, migrations: np.ndarray, ends: np.ndarray) -> Prediction:
        score, types = self.scores(windows(features, np.asarray(ends), self.window))
        return Prediction(score, types, self.threshold)

    def col(self, name: str) -> int:
        return self.feature_names.index(name)


class DFTM(RulePredictor):
    """DFTM style: a host is failing when its current CPU load crosses a threshold."""

    kind = "dftm"

    def scores(self, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        s = w[:, -1, :, self.col("cpu_utilisation")]
        return s, self._type_for("cpu", *s.shape)


class PCFT(RulePredictor):
    """PCFT style: extrapolate the CPU trend over the window to the target interval."""

    kind = "pcft"

    def scores(self, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        cpu = w[..., self.col("cpu_utilisation")]
        s = cpu[:, -1] + trend(cpu) * self.lead
        return s, self._type_for("cpu", *s.shape)


class ECLB(RulePredictor):
    """ECLB style: an exponentially smoothed CPU load (recent intervals weigh more)."""

    kind = "eclb"

    def scores(self, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        cpu = w[..., self.col("cpu_utilisation")]
        weights = 0.5 ** np.arange(cpu.shape[1])[::-1]
        s = np.tensordot(weights / weights.sum(), cpu, axes=(0, 1))
        return s, self._type_for("cpu", *s.shape)


class PromQLRules(RulePredictor):
    """What admins run today: ``predict_linear`` alerts.

    memory: predict_linear(memory_used_fraction[W], lead) >= 1 - margin
    disk:   predict_linear(disk_used_fraction[W], lead) >= 1 - margin
    cpu:    avg_over_time(cpu_utilisation[W]) >= 1 - margin
    The score is the largest projection; the fault type is the rule that scored it. The
    single threshold stands for the alert's margin, fitted like the others.
    """

    kind = "promql"
    needs = ("cpu_utilisation", "memory_used_fraction", "disk_used_fraction")

    def scores(self, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mem = w[..., self.col("memory_used_fraction")]
        disk = w[..., self.col("disk_used_fraction")]
        cpu = w[..., self.col("cpu_utilisation")]
        proj = np.stack([cpu.mean(axis=1), mem[:, -1] + trend(mem) * self.lead, disk[:, -1] + trend(disk) * self.lead], axis=-1)
        names = ["cpu", "memory", "disk"]
        best = proj.argmax(axis=-1)
        types = np.zeros((*best.shape, len(self.class_names) - 1))
        for i, name in enumerate(names):
            types[..., self.class_names.index(name) - 1] += best == i
        return proj.max(axis=-1), types
