"""Shared pieces for the non-neural baselines: windowed feature tables and fitting helpers."""

from __future__ import annotations

import numpy as np


def windows(features: np.ndarray, ends: np.ndarray, window: int) -> np.ndarray:
    """[N, W, H, F] windows ending at ``ends``."""
    idx = ends[:, None] + np.arange(-window + 1, 1)[None, :]
    return features[idx]


def column(feature_names: list[str], name: str) -> int:
    if name not in feature_names:
        raise ValueError(f"this baseline needs the feature {name!r}, which the dataset lacks")
    return feature_names.index(name)


def trend(w: np.ndarray) -> np.ndarray:
    """Least-squares slope per interval over the window axis (axis 1) of [N, W, ...]."""
    W = w.shape[1]
    if W < 2:
        return np.zeros_like(w[:, 0])
    t = np.arange(W) - (W - 1) / 2
    return np.tensordot(t, w, axes=(0, 1)) / (t**2).sum()


def tabular(features: np.ndarray, ends: np.ndarray, window: int) -> np.ndarray:
    """Per host-window rows: last value, window mean, slope and range of every feature.
    Returns [N*H, 4F]."""
    w = windows(features, ends, window)  # [N, W, H, F]
    parts = [w[:, -1], w.mean(axis=1), trend(w), w.max(axis=1) - w.min(axis=1)]
    table = np.concatenate(parts, axis=-1)  # [N, H, 4F]
    return table.reshape(-1, table.shape[-1])
