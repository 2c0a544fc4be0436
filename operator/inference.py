"""One interval's prediction: the complete nodes' windows and edges in, a risk per node out."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ftmoe.operator.node_metrics import FeatureWindow
from ftmoe.predictor.base import Predictor


@dataclass(frozen=True)
class Driver:
    feature: str
    value: float
    zscore: float


@dataclass(frozen=True)
class NodePrediction:
    node: str
    risk: float
    fault_type: str
    scores: dict[str, float]
    drivers: tuple[Driver, ...] = field(default_factory=tuple)


def predict(predictor: Predictor, window: FeatureWindow, edges: np.ndarray, top_drivers: int = 3) -> dict[str, NodePrediction]:
    """Predictions for the nodes with complete windows; the others get none.

    ``edges`` are (window index, source, target) over ``window.nodes``; edges touching an
    incomplete node are dropped with it."""
    complete = window.complete
    keep = np.flatnonzero(complete)
    if len(keep) == 0:
        return {}
    remap = -np.ones(len(window.nodes), dtype=np.int64)
    remap[keep] = np.arange(len(keep))
    if len(edges):
        e = edges[(remap[edges[:, 1]] >= 0) & (remap[edges[:, 2]] >= 0)]
        edges = np.stack([e[:, 0], remap[e[:, 1]], remap[e[:, 2]]], axis=1) if len(e) else np.zeros((0, 3), np.int64)
    features = window.values[:, keep, :].astype(np.float32)
    out = predictor.predict_arrays(features, edges, np.array([features.shape[0] - 1]))
    classes = predictor.class_names[1:]
    z = zscores(predictor, features[-1])
    result: dict[str, NodePrediction] = {}
    for j, h in enumerate(keep):
        node = window.nodes[h]
        types = out.type_probability[0, j]
        order = np.argsort(-np.abs(z[j]))[:top_drivers]
        drivers = tuple(Driver(window.features[f], float(features[-1, j, f]), float(z[j, f])) for f in order)
        result[node] = NodePrediction(
            node, float(out.fault_probability[0, j]), classes[int(types.argmax())], {c: float(p) for c, p in zip(classes, types)}, drivers
        )
    return result


def zscores(predictor: Predictor, last: np.ndarray) -> np.ndarray:
    """How far each node's latest values are from normal: against the training statistics
    when the model keeps them, else against the other nodes now."""
    normaliser = getattr(predictor, "normaliser", None)
    if normaliser is not None:
        return np.asarray(normaliser(last), dtype=np.float64)
    std = last.std(axis=0)
    return (last - last.mean(axis=0)) / np.where(std > 1e-9, std, 1.0)
