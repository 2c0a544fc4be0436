"""From a v1 dataset to model inputs: normalisation, windows, schedule graphs, splits.

A sample ending at interval t holds features [t-W+1 .. t] of every host, the schedule
graph of the migrations in those intervals, and the labels at t + lead (lead 1 by
default: predict the next interval). The split is temporal: the last ``test_share`` of
intervals is the test set, and no window crosses a split boundary.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch

from ftmoe.simulator.dataset import Dataset


@dataclass
class Normaliser:
    """Per-feature log1p (for heavy-tailed, non-negative features) then z-score.

    Fitted on the training intervals only and saved with the model."""

    log: list[bool]
    mean: list[float]
    std: list[float]

    @classmethod
    def fit(cls, features: np.ndarray) -> Normaliser:
        flat = features.reshape(-1, features.shape[-1]).astype(np.float64)
        log = [bool(col.min() >= 0 and np.percentile(col, 99) > 10) for col in flat.T]
        x = np.where(log, np.log1p(np.clip(flat, 0, None)), flat)
        std = x.std(axis=0)
        return cls(log, x.mean(axis=0).tolist(), np.where(std > 1e-8, std, 1.0).tolist())

    def __call__(self, features: np.ndarray) -> np.ndarray:
        log = np.array(self.log)
        x = np.where(log, np.log1p(np.clip(features, 0, None)), features)
        return ((x - np.array(self.mean)) / np.array(self.std)).astype(np.float32)

    def to_dict(self) -> dict[str, list]:
        return asdict(self)


def migration_edges(migrations: np.ndarray, T: int) -> list[np.ndarray]:
    """Per interval, the unique (source, target) pairs of its migrations, [E_t, 2]."""
    out: list[np.ndarray] = [np.zeros((0, 2), dtype=np.int64) for _ in range(T)]
    if len(migrations) == 0:
        return out
    m = migrations[migrations[:, 1] != migrations[:, 2]]
    order = np.argsort(m[:, 0], kind="stable")
    m = m[order]
    bounds = np.searchsorted(m[:, 0], np.arange(T + 1))
    for t in range(T):
        pairs = m[bounds[t] : bounds[t + 1], 1:]
        if len(pairs):
            out[t] = np.unique(pairs, axis=0).astype(np.int64)
    return out


class WindowSet(torch.utils.data.Dataset):
    """Samples ending at the intervals in ``ends``; labels at end + lead."""

    def __init__(self, features: np.ndarray, labels: np.ndarray, edges: list[np.ndarray], ends: np.ndarray, window: int, lead: int = 1):
        self.x = torch.from_numpy(features)  # normalised [T, H, F]
        self.y = torch.from_numpy(labels.astype(np.int64))
        self.edges = edges
        self.ends = ends
        self.window = window
        self.lead = lead

    def __len__(self) -> int:
        return len(self.ends)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
        t = int(self.ends[i])
        x = self.x[t - self.window + 1 : t + 1]
        e = [self.edges[s] for s in range(t - self.window + 1, t + 1)]
        pairs = np.unique(np.concatenate(e), axis=0) if any(len(a) for a in e) else np.zeros((0, 2), dtype=np.int64)
        return x, self.y[t + self.lead], torch.from_numpy(pairs.T.copy()), t


def collate(batch: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    xs, ys, es, ts = zip(*batch)
    H = xs[0].shape[1]
    edge_index = torch.cat([e + b * H for b, e in enumerate(es)], dim=1) if es else torch.zeros((2, 0), dtype=torch.long)
    return torch.stack(xs), torch.stack(ys), edge_index.long(), torch.tensor(ts)


@dataclass
class Splits:
    train: np.ndarray  # window end intervals
    val: np.ndarray
    test: np.ndarray


def temporal_split(T: int, window: int, lead: int = 1, test_share: float = 0.2, val_share: float = 0.1) -> Splits:
    """Window ends for train / validation / test; no window or target crosses a boundary."""
    test_start = int(round(T * (1 - test_share)))
    val_start = int(round(test_start * (1 - val_share)))

    def ends(lo: int, hi: int) -> np.ndarray:
        # the window [end-W+1, end] and the target end+lead must lie in [lo, hi)
        return np.arange(lo + window - 1, hi - lead)

    return Splits(ends(0, val_start), ends(val_start, test_start), ends(test_start, T))


def all_ends(T: int, window: int, lead: int = 1) -> np.ndarray:
    return np.arange(window - 1, T - lead)


def check_features(ds: Dataset, names: list[str]) -> list[int]:
    """Column order of the model's features in ``ds``; a missing one is an error."""
    missing = [n for n in names if n not in ds.feature_names]
    if missing:
        raise ValueError(f"dataset lacks feature(s) the model was trained on: {', '.join(missing)}")
    return [ds.feature_names.index(n) for n in names]
