"""The checkpoint contract on the cluster side: per interval, each training job's
interval and "checkpoint now" requests, written as pod annotations; and the gate that
makes a drain ask a training pod to checkpoint before it is evicted.

Jobs are the selected pods grouped by controlling owner (a Deployment's ReplicaSet, a
JobSet's Job, a StatefulSet). A job fails when any of its nodes fails, so its rate sums
the rates of the nodes its pods run on. State lives on the pods: the last interval
change, the last request and when it was made, and the job's acknowledgement.
"""

from __future__ import annotations

import logging
import statistics
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from ftmoe.checkpoint import ACK, INTERVAL, REASON, REQUEST
from ftmoe.operator import annotations as A
from ftmoe.operator.checkpoint_policy import JobView, damped, decide, work_at_risk
from ftmoe.operator.kube import Forbidden
from ftmoe.operator.migrations import owner_key
from ftmoe.operator.policy import Checkpointing, selector_matches

log = logging.getLogger(__name__)

REQUESTED_AT = "ftmoe.io/checkpoint-requested-at"
CHANGED_AT = "ftmoe.io/checkpoint-interval-changed-at"
CHECKPOINT_AT = "ftmoe.io/checkpoint-at"  # optional: written by a job that may patch its pod
COST = "ftmoe.io/checkpoint-cost-seconds"


def selected(pod: dict[str, Any], cp: Checkpointing) -> bool:
    meta = pod.get("metadata", {})
    return not meta.get("deletionTimestamp") and selector_matches(meta.get("labels") or {}, cp.pod_selector)


def annotation_float(pod: dict[str, Any], key: str) -> float | None:
    try:
        value = (pod["metadata"].get("annotations") or {}).get(key)
        return float(value) if value is not None else None
    except ValueError:
        return None


def start_time(pod: dict[str, Any]) -> float | None:
    return A.parse_time((pod.get("status") or {}).get("startTime"))


@dataclass(frozen=True)
class PodUpdate:
    namespace: str
    name: str
    annotations: dict[str, str | None]
    requested: bool  # a new "checkpoint now"
    reason: str


def plan_jobs(
    cp: Checkpointing,
    pods: list[dict[str, Any]],
    risks: dict[str, float],
    loads: dict[str, float],
    horizon: float,
    alarm_threshold: float,
    now: float,
) -> list[PodUpdate]:
    jobs: dict[str, list[dict[str, Any]]] = {}
    for pod in pods:
        if selected(pod, cp) and pod.get("spec", {}).get("nodeName"):
            jobs.setdefault(owner_key(pod["metadata"]) or f"pod/{pod['metadata']['name']}", []).append(pod)
    updates: list[PodUpdate] = []
    for members in jobs.values():
        updates += plan_job(cp, members, risks, loads, horizon, alarm_threshold, now)
    return updates


def plan_job(
    cp: Checkpointing,
    pods: list[dict[str, Any]],
    risks: dict[str, float],
    loads: dict[str, float],
    horizon: float,
    alarm_threshold: float,
    now: float,
) -> list[PodUpdate]:
    nodes = sorted({p["spec"]["nodeName"] for p in pods})
    current = [annotation_float(p, INTERVAL) for p in pods]
    period = next((c for c in current if c), None)
    anchors = [
        t
        for p in pods
        for t in (
            annotation_float(p, CHECKPOINT_AT) or A.parse_time((p["metadata"].get("annotations") or {}).get(REQUESTED_AT)),
            start_time(p),
        )
        if t is not None
    ]
    anchor = max(anchors) if anchors else now
    costs = [c for c in (annotation_float(p, COST) for p in pods) if c is not None]
    job = JobView(
        node_risks=tuple(risks.get(n, 0.0) for n in nodes),
        horizon=horizon,
        load=statistics.fmean(loads.get(n, 1.0) for n in nodes),
        alarm=any(risks.get(n, 0.0) >= alarm_threshold for n in nodes),
        work_at_risk=work_at_risk(now, anchor, period or cp.max_interval),
        cost=max(costs) if costs else None,
    )
    decision = decide(cp, job)
    if decision.checkpoint_now and any(pending(p, cp.ack_timeout, now) for p in pods):
        # The job has not handled the last request yet: a newer id would only hide that one.
        decision = replace(decision, checkpoint_now=False, reason=decision.reason + " (previous request still pending)")
    request = max((int(annotation_float(p, REQUEST) or 0) for p in pods), default=0) + (1 if decision.checkpoint_now else 0)
    updates = []
    for pod, cur in zip(pods, current):
        ann = pod["metadata"].get("annotations") or {}
        interval = damped(cp, cur, decision.interval, A.parse_time(ann.get(CHANGED_AT)), now)
        want: dict[str, str | None] = {INTERVAL: str(int(round(interval)))}
        if cur is None or int(round(interval)) != int(round(cur)):
            want[CHANGED_AT] = A.rfc3339(now)
        if decision.checkpoint_now:
            want.update({REQUEST: str(request), REQUESTED_AT: A.rfc3339(now), REASON: decision.reason[:500]})
        changed = {k: v for k, v in want.items() if ann.get(k) != v}
        if changed:
            updates.append(
                PodUpdate(pod["metadata"]["namespace"], pod["metadata"]["name"], changed, decision.checkpoint_now, decision.reason)
            )
    return updates


def pending(pod: dict[str, Any], ack_timeout: float, now: float) -> bool:
    """A request the job has neither acknowledged nor had ack_timeout to handle."""
    requested_at = A.parse_time((pod["metadata"].get("annotations") or {}).get(REQUESTED_AT))
    request = int(annotation_float(pod, REQUEST) or 0)
    return requested_at is not None and now - requested_at < ack_timeout and int(annotation_float(pod, ACK) or 0) < request


class CheckpointGate:
    """Before a selected pod is evicted: request a checkpoint, then wait for the job's
    acknowledgement or ``ack_timeout``. Returns "evict", "requested" or "waiting"."""

    def __init__(self, cp: Checkpointing, patch_pod: Callable[[str, str, dict[str, Any]], None]):
        self.cp = cp
        self.patch_pod = patch_pod

    def before_evict(self, pod: dict[str, Any], node: str, drain_started: float, now: float) -> str:
        if not selected(pod, self.cp):
            return "evict"
        meta = pod["metadata"]
        ann = meta.get("annotations") or {}
        requested_at = A.parse_time(ann.get(REQUESTED_AT))
        request = int(annotation_float(pod, REQUEST) or 0)
        if requested_at is None or requested_at < drain_started:
            try:
                self.request(meta, request, node, now)
            except Forbidden as err:
                log.warning("no checkpoint request for %s/%s before its eviction: %s", meta["namespace"], meta["name"], err)
                return "evict"  # the job cannot be told; waiting for an ack that cannot come only delays the drain
            return "requested"
        acked = int(annotation_float(pod, ACK) or 0) >= request
        return "evict" if acked or now - requested_at >= self.cp.ack_timeout else "waiting"

    def request(self, meta: dict[str, Any], request: int, node: str, now: float) -> None:
        annotations = {
            REQUEST: str(request + 1),
            REQUESTED_AT: A.rfc3339(now),
            REASON: f"node {node} is being drained: checkpoint before eviction",
        }
        self.patch_pod(meta["namespace"], meta["name"], {"metadata": {"annotations": annotations}})
