"""What really happened to a node this interval, from the cluster itself, mapped to fault
types by a configurable table (``spec.learning.labels``).

Evidence, strongest first: a condition the table maps (the kubelet's MemoryPressure,
DiskPressure and PIDPressure; node-problem-detector's KernelDeadlock, ReadonlyFilesystem,
...) set to True; containers OOM-killed on the node since the last interval (memory); pods
the kubelet evicted for disk or memory pressure. A node that is NotReady or Unknown takes
the type its evidence points to, or the table's entry for ``Ready`` ("unknown").
"""

from __future__ import annotations

from typing import Any

from ftmoe.operator.annotations import parse_time
from ftmoe.operator.api.policy_types import DEFAULT_LABELS  # spec.learning.labels' default, declared with the field
from ftmoe.operator.node_status import statuses


def rfc3339_any(text: str | None) -> float | None:
    """RFC 3339 with or without fractional seconds."""
    if not text:
        return None
    return parse_time(text.split(".")[0].rstrip("Z") + "Z")


def pod_evidence(pods: list[dict[str, Any]], since: float) -> str | None:
    for pod in pods:
        status = pod.get("status") or {}
        if status.get("reason") == "Evicted":
            message = (status.get("message") or "").lower()
            if "disk" in message or "ephemeral-storage" in message:
                return "disk"
            if "memory" in message:
                return "memory"
        for cs in status.get("containerStatuses") or []:
            for state in (cs.get("state") or {}, cs.get("lastState") or {}):
                term = state.get("terminated")
                if term and term.get("reason") == "OOMKilled":  # before the time is parsed: 50,000 pods every interval
                    finished = rfc3339_any(term.get("finishedAt"))
                    if finished is not None and finished >= since:
                        return "memory"
    return None


def observed_fault(node: dict[str, Any], pods: list[dict[str, Any]], since: float, labels: dict[str, str] | None = None) -> str | None:
    """The fault type the cluster shows on ``node`` (pods: the pods bound to it), or None."""
    table = labels if labels is not None else DEFAULT_LABELS
    status = statuses(node)
    for kind, fault in table.items():
        if kind != "Ready" and status.get(kind) == "True":
            return fault
    evidence = pod_evidence(pods, since)
    if status.get("Ready") in ("False", "Unknown"):
        return evidence or table.get("Ready", "unknown")
    return evidence
