"""What is on each node, for the cost model: evictable pods, their CPU requests, training
pods and their work at risk, free capacity elsewhere, and recent arrivals.

A training pod's work at risk and checkpoint cost are its gang's (the running pods of its
controller): when one member of a synchronous job is lost, every member loses the work since
the checkpoint and waits for the restart (docs/kubernetes-regime.md)."""

from __future__ import annotations

from typing import Any

from ftmoe.operator import annotations as A
from ftmoe.operator.checkpoint_policy import work_at_risk
from ftmoe.operator.checkpoint_requests import CHECKPOINT_AT, COST, REQUESTED_AT, annotation_float, selected, start_time
from ftmoe.operator.costs import NodeLoad
from ftmoe.operator.drain import to_evict
from ftmoe.operator.migrations import MigrationTracker
from ftmoe.operator.node_status import condition
from ftmoe.operator.policy import PolicySpec


def cpu_cores(quantity: str | None) -> float:
    """A Kubernetes CPU quantity ("250m", "2", "1.5") in cores."""
    if not quantity:
        return 0.0
    q = str(quantity)
    return float(q[:-1]) / 1000 if q.endswith("m") else float(q)


def pod_cpu(pod: dict[str, Any]) -> float:
    return sum(cpu_cores(((c.get("resources") or {}).get("requests") or {}).get("cpu")) for c in pod.get("spec", {}).get("containers", []))


def controller(pod: dict[str, Any]) -> str | None:
    """The uid of the pod's controller (its Job, JobSet's Job, StatefulSet, ...), if any."""
    for ref in pod.get("metadata", {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return str(ref.get("uid"))
    return None


def gang_sizes(pods: list[dict[str, Any]]) -> dict[str | None, int]:
    """Running pods per controller: how many pods a training job's member takes down with it."""
    out: dict[str | None, int] = {}
    for p in pods:
        uid = controller(p)
        if uid is not None and p.get("status", {}).get("phase") not in ("Succeeded", "Failed"):
            out[uid] = out.get(uid, 0) + 1
    return out


def node_loads(
    nodes: dict[str, dict[str, Any]], pods: list[dict[str, Any]], spec: PolicySpec, tracker: MigrationTracker, now: float
) -> dict[str, NodeLoad]:
    on: dict[str, list[dict[str, Any]]] = {}
    for p in pods:
        node = p.get("spec", {}).get("nodeName")
        if node and p.get("status", {}).get("phase") not in ("Succeeded", "Failed"):
            on.setdefault(node, []).append(p)
    cores = {n: cpu_cores((obj.get("status", {}).get("allocatable") or {}).get("cpu")) for n, obj in nodes.items()}
    free = {
        n: cores[n] - sum(pod_cpu(p) for p in on.get(n, []))
        for n in nodes
        if not nodes[n].get("spec", {}).get("unschedulable") and condition(nodes[n], "Ready") == "True"
    }
    total_free = sum(max(f, 0.0) for f in free.values())
    cp = spec.checkpointing
    gangs = gang_sizes(pods)
    arrivals = tracker.arrivals_per_node(now, 3600.0)
    loads = {}
    for n in nodes:
        evictable = to_evict(on.get(n, []), spec.drain)
        training = [p for p in evictable if cp is not None and selected(p, cp)]
        risk_work = 0.0
        cost = cp.cost if cp is not None else 0.0
        for p in training:
            ann = p["metadata"].get("annotations") or {}
            anchor = annotation_float(p, CHECKPOINT_AT) or A.parse_time(ann.get(REQUESTED_AT)) or start_time(p) or now
            interval = annotation_float(p, "ftmoe.io/checkpoint-interval-seconds") or (cp.max_interval if cp else 0.0)
            # A synchronous job stalls whole when one member goes: its loss is the gang's.
            gang = gangs.get(controller(p), 1)
            risk_work = max(risk_work, gang * work_at_risk(now, anchor, interval))
            cost = max(cost, gang * (annotation_float(p, COST) or (cp.cost if cp is not None else 0.0)))
        loads[n] = NodeLoad(
            pods=len(evictable),
            training_pods=len(training),
            cpu_requests=sum(pod_cpu(p) for p in evictable),
            cores=cores[n],
            work_at_risk=risk_work,
            checkpoint_cost=cost,
            expected_arrivals=arrivals.get(n, 0) * spec.horizon / 3600.0,
            free_cores_elsewhere=total_free - max(free.get(n, 0.0), 0.0),
        )
    return loads
