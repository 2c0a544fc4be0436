"""Real datasets into format v1: ASD (real servers, expert labels) and Nezha (real
Kubernetes fault injection, typed faults). Each card (``metadata.card``) says what was
decided on the way and why; docs/datasets.md says the same for people.
"""

from __future__ import annotations

import csv
import json
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from ftmoe.contract.dataset import Dataset, DatasetError

ASD_SERVERS = [f"omi-{i}" for i in range(1, 13)]
ASD_INTERVAL_SECONDS = 300.0

# Nezha's five injected types as fault classes. CPU contention (a noisy neighbour) and CPU
# consumption (a hog inside the pod) both starve the pod of CPU; the two code-level faults
# (an exception thrown, a wrong value returned) both break the service's answers without a
# resource cause.
NEZHA_CLASSES = ["none", "cpu", "network", "code"]
NEZHA_TYPE_TO_CLASS = {"cpu_contention": "cpu", "cpu_consumed": "cpu", "network_delay": "network", "exception": "code", "return": "code"}
NEZHA_SYSTEMS = {"online-boutique": ("2022-08-22", "2022-08-23"), "train-ticket": ("2023-01-29", "2023-01-30")}
NEZHA_INTERVAL_SECONDS = 60.0
# Injections follow each other every ~8 minutes (median gap, both systems); the publication's
# chaos experiments last a few minutes. bench/nezha_duration.py measures how long the
# injected pod's metrics stay off its pre-injection level: see docs/datasets.md.
NEZHA_FAULT_MINUTES = 5
NEZHA_COLUMNS = [
    "CpuUsage(m)",
    "CpuUsageRate(%)",
    "MemoryUsage(Mi)",
    "MemoryUsageRate(%)",
    "SyscallRead",
    "SyscallWrite",
    "NetworkReceiveBytes",
    "NetworkTransmitBytes",
    "PodClientLatencyP90(s)",
    "PodServerLatencyP90(s)",
    "PodClientLatencyP95(s)",
    "PodServerLatencyP95(s)",
    "PodClientLatencyP99(s)",
    "PodServerLatencyP99(s)",
    "PodWorkload(Ops)",
    "PodSuccessRate(%)",
    "NodeCpuUsageRate(%)",
    "NodeMemoryUsageRate(%)",
    "NodeNetworkReceiveBytes",
]


def _feature_name(column: str) -> str:
    """'CpuUsageRate(%)' -> 'cpu_usage_rate_percent'."""
    unit = {"(m)": "_millicores", "(%)": "_percent", "(Mi)": "_mebibytes", "(s)": "_seconds", "(Ops)": "_ops"}
    base, suffix = column, ""
    for k, v in unit.items():
        if column.endswith(k):
            base, suffix = column[: -len(k)], v
    return re.sub(r"(?<!^)(?=[A-Z])", "_", base).lower().replace("p_9", "p9") + suffix


def from_asd(folder: str | Path) -> Dataset:
    """``asd.npz`` + ``interpretation_labels.json`` -> one v1 dataset, servers as hosts.

    The 30 training days carry no labels: they are kept as an unlabelled prefix
    (``labelled`` False), read for normalisation and as the history of the first windows,
    never as negatives. omi-12's shorter training series sets the prefix length (all
    servers aligned at the end of their training series, the README's assumption)."""
    folder = Path(folder)
    path = folder / "asd.npz"
    if not path.is_file():
        raise DatasetError(f"{path}: no such file. Fix: point at the folder that holds asd.npz (shared/data/asd)")
    with np.load(path, allow_pickle=False) as npz:
        missing = [f"{s}_{part}" for s in ASD_SERVERS for part in ("train", "test", "test_label") if f"{s}_{part}" not in npz.files]
        if missing:
            raise DatasetError(f"{path}: missing arrays {', '.join(missing[:4])}. Fix: use the asd.npz described in its README")
        train = {s: npz[f"{s}_train"] for s in ASD_SERVERS}
        test = {s: npz[f"{s}_test"] for s in ASD_SERVERS}
        test_label = {s: npz[f"{s}_test_label"] for s in ASD_SERVERS}
    prefix = min(len(v) for v in train.values())
    T_test = len(test[ASD_SERVERS[0]])
    F = train[ASD_SERVERS[0]].shape[1]
    features = np.stack([np.concatenate([train[s][-prefix:], test[s]]) for s in ASD_SERVERS], axis=1).astype(np.float32)
    labels = np.zeros((prefix + T_test, len(ASD_SERVERS)), dtype=np.int8)
    for h, s in enumerate(ASD_SERVERS):
        labels[prefix:, h] = (test_label[s] > 0).astype(np.int8)
    labelled = np.zeros(prefix + T_test, dtype=bool)
    labelled[prefix:] = True
    segments = 0
    labels_path = folder / "interpretation_labels.json"
    if labels_path.is_file():
        segments = sum(len(v) for v in json.loads(labels_path.read_text()).values())
    card = {
        "source": "ASD (zhhlee/InterFusion, KDD 2021), 12 real servers, expert-labelled incidents; values scaled to [0, 1] per metric "
        "and server by its authors",
        "hosts": "servers omi-1 .. omi-12; no migrations between them",
        "classes": "detection only: none / anomaly (an expert-labelled incident); typing metrics do not apply",
        "features": f"{F} unnamed metrics (metric_01 .. metric_{F:02d}); the names are not published",
        "unlabelled_prefix": f"the last {prefix} of the 30 training days (omi-12 has only {prefix}): labelled=False, "
        "used for normalisation and window history, never as negatives or positives",
        "labelled": f"the {T_test} test intervals (15 days); {int(labels.sum())} anomalous host-intervals; "
        f"{segments} labelled segments in interpretation_labels.json",
        "interval_seconds": ASD_INTERVAL_SECONDS,
    }
    meta = {"generator": "ftmoe dataset from-asd", "dataset": "asd", "card": card, "unlabelled_prefix": prefix}
    return Dataset(
        features,
        [f"metric_{k + 1:02d}" for k in range(F)],
        labels,
        ["none", "anomaly"],
        np.zeros((0, 3), dtype=np.int32),
        list(ASD_SERVERS),
        ASD_INTERVAL_SECONDS,
        meta,
        labelled,
    )


def _parse_time(text: str) -> float:
    # "2022-08-22 03:51:19.607158889 +0000 UTC m=+0.11" -> unix seconds. The TimeStamp
    # column of the 2022 folders is 200,000,000 s ahead of Time and of the fault list.
    stamp = text.split(".")[0].split(" +")[0]
    return datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S").replace(tzinfo=timezone.utc).timestamp()


def _service(pod: str) -> str:
    """'ts-route-service-b6c59fb57-zv8dt' -> 'ts-route-service' (the Deployment's pods)."""
    return re.sub(r"-[0-9a-f]{6,10}-[0-9a-z]{5}$", "", pod)


def _read_pod(path: Path) -> tuple[np.ndarray, np.ndarray]:
    times, rows = [], []
    with path.open(newline="") as fh:
        for rec in csv.DictReader(fh):
            try:
                rows.append([float(rec[c]) if rec[c] not in ("", "NaN", "nan") else np.nan for c in NEZHA_COLUMNS])
                times.append(_parse_time(rec["Time"]))
            except (KeyError, ValueError) as err:
                raise DatasetError(f"{path}: unreadable row ({err}). Fix: use Nezha's metric CSVs unchanged") from err
    return np.array(times), np.array(rows, dtype=np.float64)


def from_nezha(folder: str | Path, system: str = "train-ticket", fault_minutes: int = NEZHA_FAULT_MINUTES) -> Dataset:
    """One system's two days of pod metrics -> one v1 dataset, services as hosts.

    Each service is one host across both days (its pod's name changes between days). The
    two days are separate recordings: ``metadata.breaks`` marks where the second starts,
    so no window spans the night between them. Samples and injections fall into the minute they happened in; a
    minute a pod did not report takes its previous value (at most 3 in a row, else the
    interval is unlabelled and dropped from scoring). A fault labels its pod from the
    injection minute for ``fault_minutes`` minutes."""
    root = Path(folder)
    rca = root / "rca_data" if (root / "rca_data").is_dir() else root
    if system not in NEZHA_SYSTEMS:
        raise DatasetError(f"--system {system!r}: choose one of {', '.join(NEZHA_SYSTEMS)}")
    if fault_minutes < 1:
        raise DatasetError("--fault-minutes must be at least 1")
    days = NEZHA_SYSTEMS[system]
    per_day: list[tuple[np.ndarray, dict[str, np.ndarray], list[dict[str, Any]]]] = []
    services: set[str] = set()
    for day in days:
        metric_dir = rca / day / "metric"
        faults_path = rca / day / f"{day}-fault_list.json"
        if not metric_dir.is_dir() or not faults_path.is_file():
            raise DatasetError(f"{rca / day}: no metric/ folder or fault list. Fix: point at shared/data/nezha")
        pods = {}
        for f in sorted(metric_dir.glob("*_metric.csv")):
            times, rows = _read_pod(f)
            pods[_service(f.name[: -len("_metric.csv")])] = (times, rows)
        start = min(float(t.min()) for t, _ in pods.values())
        stop = max(float(t.max()) for t, _ in pods.values())
        grid = np.arange(np.floor(start / 60) * 60, np.floor(stop / 60) * 60 + 1, 60.0)
        aligned: dict[str, np.ndarray] = {}
        for svc, (times, rows) in pods.items():
            idx = np.clip(np.floor((times - grid[0]) / 60).astype(int), 0, len(grid) - 1)
            block = np.full((len(grid), len(NEZHA_COLUMNS)), np.nan)
            block[idx] = rows
            aligned[svc] = block
        faults = [f for v in json.loads(faults_path.read_text()).values() for f in v]
        per_day.append((grid, aligned, faults))
        services |= set(aligned)
    hosts = sorted(services)
    blocks, label_blocks, known_blocks, breaks = [], [], [], []
    type_counts: dict[str, int] = {}
    offset = 0
    used, skipped = 0, []
    for grid, aligned, faults in per_day:
        T = len(grid)
        x = np.full((T, len(hosts), len(NEZHA_COLUMNS)), np.nan)
        for h, svc in enumerate(hosts):
            if svc in aligned:
                x[:, h] = aligned[svc]
        x, known = _fill_forward(x, limit=3)
        y = np.zeros((T, len(hosts)), dtype=np.int8)
        for fault in faults:
            svc = _service(fault["inject_pod"])
            cls = NEZHA_TYPE_TO_CLASS.get(fault["inject_type"])
            t0 = int(np.floor((_parse_time(fault["inject_time"]) - grid[0]) / 60))
            if cls is None or svc not in hosts or not 0 <= t0 < T:
                skipped.append(f"{fault['inject_pod']} {fault['inject_type']} {fault['inject_time']}")
                continue
            y[t0 : t0 + fault_minutes, hosts.index(svc)] = NEZHA_CLASSES.index(cls)
            type_counts[fault["inject_type"]] = type_counts.get(fault["inject_type"], 0) + 1
            used += 1
        if offset:
            breaks.append(offset)
        blocks.append(x)
        label_blocks.append(y)
        known_blocks.append(known)
        offset += T
    features = np.concatenate(blocks)
    labelled = np.concatenate(known_blocks)
    # Columns no pod ever reported (some latency percentiles on some days) are zero, not NaN.
    features = np.nan_to_num(features, nan=0.0).astype(np.float32)
    card = {
        "source": "Nezha (IntelligentDDS/Nezha, FSE 2023): real Kubernetes cluster, faults injected into one pod at a time",
        "system": f"{system}, days {', '.join(days)} (two separate recordings; metadata.breaks marks the second)",
        "hosts": f"{len(hosts)} services (a service's pod is one host across both days; the pod hash is stripped)",
        "classes": {"cpu": ["cpu_contention", "cpu_consumed"], "network": ["network_delay"], "code": ["exception", "return"]},
        "faults": f"{used} injections used ({', '.join(f'{k} {v}' for k, v in sorted(type_counts.items()))}); skipped: {skipped or 'none'}",
        "fault_window": f"{fault_minutes} min from the injection minute; the fault list gives no duration: see docs/datasets.md",
        "time": "from the Time column (the 2022 folders' TimeStamp column is 200,000,000 s ahead)",
        "gaps": "a missing minute repeats the pod's previous value for up to 3 minutes; longer gaps are unlabelled",
        "features": "per-pod metrics (CPU, memory, syscalls, network, latency percentiles, workload, success rate) and the hosting "
        "node's CPU, memory, network",
        "interval_seconds": NEZHA_INTERVAL_SECONDS,
    }
    meta = {"generator": "ftmoe dataset from-nezha", "dataset": f"nezha-{system}", "card": card, "breaks": breaks}
    return Dataset(
        features,
        [_feature_name(c) for c in NEZHA_COLUMNS],
        np.concatenate(label_blocks),
        list(NEZHA_CLASSES),
        np.zeros((0, 3), dtype=np.int32),
        hosts,
        NEZHA_INTERVAL_SECONDS,
        meta,
        labelled,
    )


def _fill_forward(x: np.ndarray, limit: int) -> tuple[np.ndarray, np.ndarray]:
    """Carry each host's last sample forward over up to ``limit`` missing minutes.

    Returns the filled array and, per interval, whether every host had a real or
    carried sample (intervals with longer gaps are not scored)."""
    T = x.shape[0]
    out = x.copy()
    missing = np.isnan(out).all(axis=-1)  # [T, H]: the pod reported nothing that minute
    run = np.zeros(missing.shape[1], dtype=int)
    ok = np.ones(T, dtype=bool)
    for t in range(T):
        run = np.where(missing[t], run + 1, 0)
        if t:
            fill = missing[t] & (run <= limit)
            out[t, fill] = out[t - 1, fill]
        ok[t] = not (run > limit).any() and not np.isnan(out[t]).all(axis=-1).any()
    # Leading minutes before a pod's first sample take its first sample (the pod was up).
    for h in range(x.shape[1]):
        seen = np.flatnonzero(~np.isnan(out[:, h]).all(axis=-1))
        if len(seen):
            out[: seen[0], h] = out[seen[0], h]
    return out, ok
