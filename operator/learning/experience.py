"""A bounded buffer of what each interval saw: per node the latest features, the risk and
predicted type, and the fault the cluster really showed. It feeds self-grading now and
online tuning later, and it is written under the operator's ``--state-dir`` (a volume) every
interval while small, every few minutes once large, and when the operator stops, so a
restarted operator keeps it. numpy's npz, never a pickle.
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

    # Rows live in backing arrays with room to spare along T, so that an interval writes one
    # row instead of copying the whole buffer (256 MB at 5,000 nodes) to append and trim it.
    _back: list[np.ndarray] = field(default_factory=list, init=False, repr=False, compare=False)
    _start: int = field(default=0, init=False, repr=False, compare=False)
    _index: dict[str, int] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        H, F = len(self.nodes), len(self.features)
        if self.values.size == 0:
            self.values = np.zeros((0, H, F), np.float32)
            self.risk = np.zeros((0, H), np.float32)
            self.predicted = np.zeros((0, H), np.int8)
            self.observed = np.zeros((0, H), np.int8)
        self._index = {n: i for i, n in enumerate(self.nodes)}

    def __len__(self) -> int:
        return len(self.times)

    def _columns(self) -> list[np.ndarray]:
        return [self.times, self.values, self.risk, self.predicted, self.observed]

    def _show(self, start: int, length: int) -> None:
        """Point the public arrays at rows [start, start + length) of the backing arrays."""
        self._start = start
        self.times, self.values, self.risk, self.predicted, self.observed = (b[start : start + length] for b in self._back)

    def _room_for_one(self, max_intervals: int) -> None:
        """Make sure the backing arrays have a free row after the last one: move the rows to
        the front of new arrays with room for a quarter more (a copy every quarter of the
        buffer's length, not every interval)."""
        T = len(self.times)
        if self._back and self._start + T < len(self._back[0]):
            return
        capacity = max(T + 1, min(2 * (T + 1), max_intervals + max(8, max_intervals // 4)))
        back = []
        for col in self._columns():
            b = np.empty((capacity, *col.shape[1:]), col.dtype)
            b[:T] = col
            back.append(b)
        self._back = back
        self._show(0, T)

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
        new = [n for n in nodes if n not in self._index]
        if new:
            T = len(self.times)
            for n in new:
                self._index[n] = len(self.nodes)
                self.nodes.append(n)
            self.values = np.concatenate([self.values, np.full((T, len(new), len(self.features)), np.nan, np.float32)], axis=1)
            self.risk = np.concatenate([self.risk, np.full((T, len(new)), np.nan, np.float32)], axis=1)
            self.predicted = np.concatenate([self.predicted, np.zeros((T, len(new)), np.int8)], axis=1)
            self.observed = np.concatenate([self.observed, np.zeros((T, len(new)), np.int8)], axis=1)
            self._back = []  # wider rows: new backing arrays
        idx = np.fromiter((self._index[n] for n in nodes), np.int64, len(nodes))
        self._room_for_one(max_intervals)
        T, row = len(self.times), self._start + len(self.times)
        times_b, values_b, risk_b, predicted_b, observed_b = self._back
        times_b[row] = time
        values_b[row], risk_b[row], predicted_b[row], observed_b[row] = np.nan, np.nan, 0, 0
        values_b[row, idx], risk_b[row, idx], predicted_b[row, idx], observed_b[row, idx] = values, risk, predicted, observed
        self._show(self._start, T + 1)
        keep = self.times >= time - retention
        keep[: max(0, len(keep) - max_intervals)] = False
        if keep.all():
            return
        first = int(np.argmax(keep)) if keep.any() else len(keep)
        if keep[first:].all():  # the oldest rows age out: the usual case, times only grow
            self._show(self._start + first, len(keep) - first)
        else:  # a clock that went back: keep what the mask says, in new arrays
            self.times, self.values, self.risk = self.times[keep], self.values[keep], self.risk[keep]
            self.predicted, self.observed = self.predicted[keep], self.observed[keep]
            self._back = []

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp.npz")
        # Uncompressed: float features compress by ~10 %, and compressing took 30 times as long
        # (1.2 s for an 8 MB buffer), every interval, on the interval's own thread.
        np.savez(
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
