"""Converters into dataset format v1: PreGAN's public layout and a Prometheus range export."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ftmoe.contract.dataset import Dataset, DatasetError
from ftmoe.simulator.config import CLASS_NAMES

PREGAN_FEATURES = ("cpu_utilisation", "memory_used_fraction", "disk_used_fraction")


def migrations_from_assignments(assign: np.ndarray) -> np.ndarray:
    """[T, C] host per container (-1 = not running) -> [M, 3] migrations.

    A container seen on host a at t-1 and on host b != a at t migrated a -> b at t.
    """
    prev, cur = assign[:-1], assign[1:]
    moved = (prev >= 0) & (cur >= 0) & (prev != cur)
    t, c = np.nonzero(moved)
    return np.stack([t + 1, prev[t, c], cur[t, c]], axis=1).astype(np.int32).reshape(-1, 3)


def from_pregan(time_series: Path, schedule_series: Path, labels: Path | None = None, interval_seconds: float = 300.0) -> Dataset:
    """PreGAN's ``time_series.npy`` [T, 3H] (cpu, ram, disk per host) and
    ``schedule_series.npy`` [T, C, H] (one-hot host of each container).

    PreGAN derives labels from a 98th-percentile rule per column, which marks 2 % of every
    column faulty whatever happened; we do not copy it. Give real labels as a [T, H] int
    .npy (0 none, 1 cpu, 2 memory, 3 disk), or get an unlabelled dataset (all 0) that can
    be scored by a trained model but not trained on.
    """
    ts = np.load(time_series, allow_pickle=False)
    if ts.ndim != 2 or ts.shape[1] % 3:
        raise DatasetError(f"{time_series}: expected [T, 3*H] (cpu, ram, disk per host), got shape {ts.shape}")
    T, H = ts.shape[0], ts.shape[1] // 3
    features = ts.reshape(T, H, 3).astype(np.float32)
    sched = np.load(schedule_series, allow_pickle=False)
    if sched.ndim != 3 or sched.shape[0] != T or sched.shape[2] != H:
        raise DatasetError(f"{schedule_series}: expected [T={T}, C, H={H}] one-hot placements, got shape {sched.shape}")
    assign = np.where(sched.max(axis=2) > 0, sched.argmax(axis=2), -1)
    meta: dict[str, Any] = {"generator": "ftmoe.simulator.convert.from_pregan", "source": [str(time_series), str(schedule_series)]}
    if labels is not None:
        lab = np.load(labels, allow_pickle=False)
        if lab.shape != (T, H):
            raise DatasetError(f"{labels}: labels must be [T, H] = {(T, H)}, got {lab.shape}")
        meta["labels"] = str(labels)
    else:
        lab = np.zeros((T, H), dtype=np.int8)
        meta["labels"] = "absent: all intervals marked 0 (none); use for scoring, not for training"
    return Dataset(
        features,
        list(PREGAN_FEATURES),
        lab.astype(np.int8),
        list(CLASS_NAMES),
        migrations_from_assignments(assign),
        [f"host-{i}" for i in range(H)],
        interval_seconds,
        meta,
    )


def from_prometheus(export: Path, step_seconds: float | None = None, node_label: str = "node", faults: Path | None = None) -> Dataset:
    """A JSON object mapping feature name -> Prometheus ``/api/v1/query_range`` response.

    Every series must carry ``node_label``. Samples are aligned on the step grid; a gap is
    filled with the node's previous value, and a feature with no value at all for a node
    at the start is an error (never silently zero). ``faults`` is an optional JSON list of
    ``{"node", "type" (cpu|memory|disk), "start", "end"}`` with Unix times, giving labels.
    """
    doc = json.loads(Path(export).read_text())
    if not isinstance(doc, dict) or not doc:
        raise DatasetError(f"{export}: expected a JSON object {{feature name: query_range response}}")
    names = list(doc)
    series: dict[str, dict[str, dict[float, float]]] = {}
    stamps: set[float] = set()
    for name, resp in doc.items():
        data = resp.get("data", resp) if isinstance(resp, dict) else None
        if not isinstance(data, dict) or data.get("resultType") != "matrix":
            raise DatasetError(f"{export}: feature {name!r} is not a query_range (matrix) response")
        per_node: dict[str, dict[float, float]] = {}
        for s in data.get("result", []):
            node = s.get("metric", {}).get(node_label)
            if node is None:
                raise DatasetError(
                    f"{export}: a series of feature {name!r} has no {node_label!r} label: {s.get('metric')}. "
                    f"Fix: aggregate the query `by ({node_label})` before exporting"
                )
            per_node[node] = {float(ts): float(v) for ts, v in s["values"]}
            stamps.update(per_node[node])
        series[name] = per_node
    nodes = sorted({n for per in series.values() for n in per})
    if not nodes:
        raise DatasetError(f"{export}: no series found")
    grid = np.array(sorted(stamps))
    if step_seconds is None:
        step_seconds = float(np.median(np.diff(grid))) if len(grid) > 1 else 60.0
    grid = np.arange(grid[0], grid[-1] + step_seconds / 2, step_seconds)
    T, H, F = len(grid), len(nodes), len(names)
    features = np.full((T, H, F), np.nan, dtype=np.float32)
    for k, name in enumerate(names):
        for h, node in enumerate(nodes):
            points = series[name].get(node, {})
            for ts, v in points.items():
                i = int(round((ts - grid[0]) / step_seconds))
                if 0 <= i < T:
                    features[i, h, k] = v
            col = features[:, h, k]
            if np.isnan(col[0]):
                first = np.flatnonzero(~np.isnan(col))
                if first.size == 0:
                    raise DatasetError(
                        f"{export}: feature {name!r} has no samples for node {node!r}. "
                        "Fix: check the query covers every node, or drop the node"
                    )
                col[: first[0]] = col[first[0]]  # back-fill only the leading gap
            for i in range(1, T):
                if np.isnan(col[i]):
                    col[i] = col[i - 1]
    labels = np.zeros((T, H), dtype=np.int8)
    meta: dict[str, Any] = {
        "generator": "ftmoe.simulator.convert.from_prometheus",
        "source": str(export),
        "start": float(grid[0]),
        "labels": "absent" if faults is None else str(faults),
    }
    if faults is not None:
        for f in json.loads(Path(faults).read_text()):
            if f["type"] not in CLASS_NAMES[1:]:
                raise DatasetError(f"{faults}: fault type {f['type']!r} is not one of {', '.join(CLASS_NAMES[1:])}")
            if f["node"] not in nodes:
                raise DatasetError(f"{faults}: node {f['node']!r} has no metrics in {export}")
            span = (grid >= float(f["start"])) & (grid < float(f["end"]))
            labels[span, nodes.index(f["node"])] = CLASS_NAMES.index(f["type"])
    return Dataset(features, names, labels, list(CLASS_NAMES), np.zeros((0, 3), dtype=np.int32), nodes, step_seconds, meta)
