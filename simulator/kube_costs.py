"""What Kubernetes charges for a node fault and for a drain: the timings of the kubernetes
regime (kubernetes_regime.py) and the fault statistics of a real GPU fleet.

Timings the cluster itself sets are read from the release the local cluster builds
(``timings_from_binaries``: the ``--help`` defaults of kube-controller-manager and
kube-apiserver); the others are workload facts no binary knows, stated as assumptions in
``KubeTimings`` and in docs/kubernetes-regime.md. Fault rates, classes and repair times come
from ``../shared/data/infinitehbd/`` (400 GPU servers, 348 days, 584 faults).
"""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

NODE_LOST, PRESSURE, DEGRADED = "node-lost", "pressure", "degraded"
CLASSES = (NODE_LOST, PRESSURE, DEGRADED)


@dataclass(frozen=True)
class KubeTimings:
    """Seconds. The first four are the defaults of Kubernetes v1.34 (read by
    ``timings_from_binaries``); the rest are assumptions about the workload."""

    node_monitor_grace: float = 50.0  # kube-controller-manager --node-monitor-grace-period
    not_ready_toleration: float = 300.0  # kube-apiserver --default-not-ready-toleration-seconds
    unreachable_toleration: float = 300.0  # kube-apiserver --default-unreachable-toleration-seconds
    termination_grace: float = 30.0  # a pod's default terminationGracePeriodSeconds
    pod_startup: float = 60.0  # schedule, pull a cached image, pass readiness (assumed)
    training_restart: float = 600.0  # recreate the gang, NCCL init, load the checkpoint (assumed)
    checkpoint_cost: float = 60.0  # an asynchronous checkpoint's stall (assumed)
    provisioning: float = 300.0  # a cloud node created and Ready (Karpenter's replacement; assumed)

    @property
    def taint_eviction(self) -> float:
        """From a node's death to its pods' deletion by the taint manager: the node controller
        marks it unreachable after the grace period, then the default toleration runs out."""
        return self.node_monitor_grace + self.unreachable_toleration


_FLAGS = {
    "kube-controller-manager": {"node_monitor_grace": "--node-monitor-grace-period"},
    "kube-apiserver": {
        "not_ready_toleration": "--default-not-ready-toleration-seconds",
        "unreachable_toleration": "--default-unreachable-toleration-seconds",
    },
}


def parse_duration(text: str) -> float:
    """Go durations as --help prints them (50s, 1m0s, 5m) and bare integers (seconds)."""
    if re.fullmatch(r"\d+", text):
        return float(text)
    parts = re.findall(r"(\d+(?:\.\d+)?)(h|ms|m|s)", text)
    if not parts or "".join(a + b for a, b in parts) != text:
        raise ValueError(f"not a duration: {text!r}")
    scale = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
    return sum(float(a) * scale[b] for a, b in parts)


def flag_default(help_text: str, flag: str) -> float:
    match = re.search(re.escape(flag) + r"\b[^\n]*\(default ([0-9hms.]+)\)", help_text)
    if match is None:
        raise ValueError(f"{flag}: no default in the binary's --help output")
    return parse_duration(match.group(1))


def timings_from_binaries(bin_dir: Path, base: KubeTimings | None = None) -> KubeTimings:
    """The cluster's own timings, read from the binaries the local cluster runs."""
    values: dict[str, float] = {}
    for binary, flags in _FLAGS.items():
        path = bin_dir / binary
        if not path.exists():
            raise FileNotFoundError(f"{path}: not built; run `ftmoe cluster up` once (it builds the binaries) or pass --kube-bin")
        out = subprocess.run([str(path), "--help"], capture_output=True, text=True, check=False)
        for name, flag in flags.items():
            values[name] = flag_default(out.stdout + out.stderr, flag)
    return replace(base or KubeTimings(), **values)


# InfiniteHBD's fault classes, by what they do to a Kubernetes node. Every event there made
# the node unavailable until repaired, except that a failed stress test is a node that runs
# but under-performs (a slow GPU or link): degraded, not down. Software faults (driver,
# tooling) are taken as the kubelet-visible kind: pressure, evictions.
def consequence(level: str, klass: str) -> str:
    if klass == "Stress Test Failure":
        return DEGRADED
    if level == "Software Failure":
        return PRESSURE
    return NODE_LOST


@dataclass(frozen=True)
class FaultStats:
    per_node_day: float  # unexpected faults per node per day
    repair_seconds: np.ndarray = field(repr=False)  # empirical time to repair, one per fault
    class_shares: dict[str, float] = field(default_factory=dict)
    source: str = ""

    @property
    def server_days_per_fault(self) -> float:
        return 1.0 / self.per_node_day


def infinitehbd_stats(path: Path) -> FaultStats:
    """Rate, repair times and consequence classes from InfiniteHBD's fault_trace.json."""
    trace = path / "fault_trace.json" if path.is_dir() else path
    if not trace.exists():
        raise FileNotFoundError(f"{trace}: the InfiniteHBD trace is not there; see ../shared/data/infinitehbd/README.md")
    events = sorted(json.loads(trace.read_text()), key=lambda e: e["event_time"])
    open_: dict[str, float] = {}
    repairs: list[float] = []
    classes: dict[str, int] = dict.fromkeys(CLASSES, 0)
    span = max(e["event_time"] for e in events) - min(e["event_time"] for e in events)
    for e in events:
        node = e["node_id"]
        if e["event_type"] == "fault_start":
            open_[node] = e["event_time"]
            classes[consequence(e["fault_type"]["Level"], e["fault_type"]["Class"])] += 1
        elif node in open_:
            repairs.append((e["event_time"] - open_.pop(node)) * 86400.0)
    faults = sum(classes.values())
    servers = 400  # the README: 400 servers, of which the trace names those that faulted
    return FaultStats(
        per_node_day=faults / (servers * span),
        repair_seconds=np.array(repairs),
        class_shares={k: v / faults for k, v in classes.items()},
        source=f"InfiniteHBD: {faults} faults on {servers} servers over {span:.0f} days",
    )
