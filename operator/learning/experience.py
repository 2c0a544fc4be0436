"""A bounded buffer of what each interval saw: per node the latest features, the risk and
predicted type, and the fault the cluster really showed. It feeds self-grading now and
online tuning later, and it is written to ``spec.learning.bufferPath`` (a volume) after
every interval, so a restarted operator keeps it. numpy's npz, never a pickle.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass
class Experience:
    nodes: list[str]
    features: list[str]
    classes: list[str]
    times: np.ndarray = field(default_factory=lambda: np.zeros(0))
    values: np.ndarray = field(default_factory=lambda: np.zeros((0, 0, 0), np.float32))  # [T, H, F]
    risk: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))  # [T, H], NaN = none
    predicted: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.int8))  # [T, H] class index
    observed: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.int8))  # [T, H] class index, 0 = none

    def __post_init__(self) -> None:
        H, F = len(self.nodes), len(self.features)
        if self.values.size == 0:
            self.values = np.zeros((0, H, F), np.float32)
            self.risk = np.zeros((0, H), np.float32)
            self.predicted = np.zeros((0, H), np.int8)
            self.observed = np.zeros((0, H), np.int8)

    def __len__(self) -> int:
        return len(self.times)

    def append(
        self,
        time: float,
        nodes: list[str],
        values: np.ndarray,
        risk: np.ndarray,
        predicted: np.ndarray,
        observed: np.ndarray,
        max_intervals: int,
        retention: float,
    ) -> None:
        """One interval; nodes that join later get NaN history, nodes that leave are kept
        until their history ages out."""
        new = [n for n in nodes if n not in self.nodes]
        if new:
            T = len(self.times)
            self.nodes += new
            self.values = np.concatenate([self.values, np.full((T, len(new), len(self.features)), np.nan, np.float32)], axis=1)
            self.risk = np.concatenate([self.risk, np.full((T, len(new)), np.nan, np.float32)], axis=1)
            self.predicted = np.concatenate([self.predicted, np.zeros((T, len(new)), np.int8)], axis=1)
            self.observed = np.concatenate([self.observed, np.zeros((T, len(new)), np.int8)], axis=1)
        idx = [self.nodes.index(n) for n in nodes]
        row_v = np.full((1, len(self.nodes), len(self.features)), np.nan, np.float32)
        row_r = np.full((1, len(self.nodes)), np.nan, np.float32)
        row_p = np.zeros((1, len(self.nodes)), np.int8)
        row_o = np.zeros((1, len(self.nodes)), np.int8)
        row_v[0, idx], row_r[0, idx], row_p[0, idx], row_o[0, idx] = values, risk, predicted, observed
        self.times = np.append(self.times, time)
        self.values = np.concatenate([self.values, row_v])
        self.risk = np.concatenate([self.risk, row_r])
        self.predicted = np.concatenate([self.predicted, row_p])
        self.observed = np.concatenate([self.observed, row_o])
        keep = self.times >= time - retention
        keep[: max(0, len(keep) - max_intervals)] = False
        if not keep.all():
            self.times, self.values, self.risk = self.times[keep], self.values[keep], self.risk[keep]
            self.predicted, self.observed = self.predicted[keep], self.observed[keep]

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez_compressed(
            tmp,
            nodes=np.array(self.nodes, dtype=str),
            features=np.array(self.features, dtype=str),
            classes=np.array(self.classes, dtype=str),
            times=self.times,
            values=self.values,
            risk=self.risk,
            predicted=self.predicted,
            observed=self.observed,
        )
        os.replace(tmp, path)  # a crash mid-write leaves the previous buffer, never half of one

    @classmethod
    def load(cls, path: Path, features: list[str], classes: list[str]) -> Experience:
        """The saved buffer, or an empty one when there is none or it was made for another model."""
        empty = cls([], list(features), list(classes))
        if not path.is_file():
            return empty
        try:
            with np.load(path, allow_pickle=False) as z:
                if list(z["features"]) != list(features) or list(z["classes"]) != list(classes):
                    return empty
                return cls(
                    [str(n) for n in z["nodes"]],
                    list(features),
                    list(classes),
                    z["times"],
                    z["values"],
                    z["risk"],
                    z["predicted"],
                    z["observed"],
                )
        except (OSError, ValueError, KeyError):
            return empty
