"""Run the simulator into a v1 dataset, and describe a dataset in a card."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np

from ftmoe import __version__
from ftmoe.contract.dataset import Dataset
from ftmoe.contract.features import FEATURE_NAMES
from ftmoe.contract.oracle import oracle_scores, predictable_share
from ftmoe.simulator.config import CLASS_NAMES, PAPER_SHARES, SimConfig
from ftmoe.simulator.engine import Simulator
from ftmoe.simulator.traces import TracePool

GENERATOR = f"ftmoe.simulator {__version__}"


def host_names(hosts: int) -> list[str]:
    """The same names as the local cluster's fake nodes, so live mode maps one to one."""
    return [f"node-{i}" for i in range(hosts)]


def simulate(config: SimConfig, pool: TracePool, progress: Callable[[int], None] | None = None) -> Dataset:
    sim = Simulator(config, pool)
    T, H = config.intervals, config.hosts
    features = np.zeros((T, H, len(FEATURE_NAMES)), dtype=np.float32)
    labels = np.zeros((T, H), dtype=np.int8)
    for t, (f, lab, _) in enumerate(sim.run(T, progress=progress)):
        features[t], labels[t] = f, lab
    migrations = np.array(sim.migration_log, dtype=np.int32).reshape(-1, 3)
    meta = {
        "generator": GENERATOR,
        "seed": config.seed,
        "config": config.to_dict(),
        "traces": {"source": pool.source, "vms": list(pool.names)},
        "faults": [r.to_dict() for r in sim.faults.finished_records()],
        "qos": sim.qos.summary(),
    }
    return Dataset(
        features, list(FEATURE_NAMES), labels, list(CLASS_NAMES), migrations, host_names(H), float(config.interval_seconds), meta
    )


def card(ds: Dataset, leads: tuple[int, ...] = (1, 3, 6)) -> dict[str, Any]:
    """Class shares, faults by type and cause, the predictable share and the oracle."""
    T, H, F = ds.shape
    counts = np.bincount(ds.labels.ravel().astype(np.int64), minlength=len(ds.class_names))
    shares = {name: float(counts[k] / counts.sum()) for k, name in enumerate(ds.class_names)}
    records = ds.fault_records()
    by_type = Counter(ds.class_names[int(r["fault_type"])] for r in records)
    by_cause = Counter(r["cause"] for r in records)
    out: dict[str, Any] = {
        "intervals": T,
        "hosts": H,
        "features": F,
        "migrations": int(len(ds.migrations)),
        "host_intervals": int(counts.sum()),
        "class_counts": {name: int(counts[k]) for k, name in enumerate(ds.class_names)},
        "class_shares": shares,
        "faults": len(records),
        "faults_by_type": dict(by_type),
        "faults_by_cause": dict(by_cause),
        "predictable_share": predictable_share(records),
        "oracle": [oracle_scores(ds.labels, records, lead) for lead in leads] if records else [],
    }
    if set(ds.class_names) == set(PAPER_SHARES):
        out["paper_shares"] = PAPER_SHARES
    return out


def format_card(c: dict[str, Any]) -> str:
    lines = [f"dataset: {c['intervals']} intervals x {c['hosts']} hosts x {c['features']} features, {c['migrations']} migrations"]
    lines.append("class          host-intervals   share    paper")
    paper = c.get("paper_shares", {})
    for name, n in c["class_counts"].items():
        ref = f"{paper[name]:7.1%}" if name in paper else "      -"
        lines.append(f"  {name:12} {n:14d} {c['class_shares'][name]:7.1%} {ref}")
    lines.append(
        f"faults: {c['faults']} ({', '.join(f'{k} {v}' for k, v in sorted(c['faults_by_type'].items()))}); "
        f"predictable (with a precursor): {c['predictable_share']:.1%}"
    )
    if c["faults_by_cause"]:
        lines.append("  by cause: " + ", ".join(f"{k} {v}" for k, v in sorted(c["faults_by_cause"].items())))
    for o in c["oracle"]:
        lines.append(f"oracle at lead {o['lead']}: recall {o['recall']:.3f}, precision {o['precision']:.3f}, F1 {o['f1']:.3f}")
    return "\n".join(lines)
