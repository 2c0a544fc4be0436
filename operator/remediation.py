"""Carrying out a plan: cordons, drains and uncordons, each with its events.

Each step is idempotent and its progress is written on the node (annotations), so an
operator restarted mid-drain picks up where it stopped: it re-lists the node's pods and
evicts what is still there, never replaying a cordon or an uncordon the node already shows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ftmoe.operator import annotations as A
from ftmoe.operator import own_metrics as M
from ftmoe.operator.api.disruption_types import Remediation
from ftmoe.operator.api.policy_types import DrainSpec
from ftmoe.operator.checkpoint_requests import CheckpointGate
from ftmoe.operator.decisions import CORDON, DRAIN, END_REMEDIATION, FORCE_DRAIN, REMEDIATE, UNCORDON, Action, Plan
from ftmoe.operator.drain import left_alone, to_evict
from ftmoe.operator.kube import BLOCKED, EVICTED, Forbidden, Kube, NotFound
from ftmoe.operator.migrations import MigrationTracker, owner_key
from ftmoe.operator.node_facts import cordon_patch, uncordon_patch
from ftmoe.operator.ownership import cordoned_by, release_patch
from ftmoe.operator.remediation_objects import object_ref, parse_refs, remediation_object

EventSink = Callable[[dict[str, Any], str, str, str], None]  # (object, Normal|Warning, reason, message)


@dataclass(frozen=True)
class Record:
    """One entry of status.recentActions, and one increment of the action metrics."""

    time: float
    node: str
    action: str
    outcome: str  # done | dry-run | blocked
    reason: str
    message: str

    def to_status(self) -> dict[str, str]:
        return {
            "time": A.rfc3339(self.time),
            "node": self.node,
            "action": self.action,
            "outcome": self.outcome,
            "reason": self.reason,
            "message": self.message[:500],
        }


def node_ref(node: dict[str, Any]) -> dict[str, Any]:
    meta = node.get("metadata", {})
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": meta.get("name"), "uid": meta.get("uid")}}


def pod_ref(pod: dict[str, Any]) -> dict[str, Any]:
    meta = pod.get("metadata", {})
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": meta.get("name"), "namespace": meta.get("namespace"), "uid": meta.get("uid")},
    }


def decision_text(plan: Plan, node: str, stale: bool, cordoned_by_us: bool = False, withheld: str | None = None) -> str:
    """The one-line decision stored in the ftmoe.io/decision annotation. Dry runs and
    blocked actions raise an event only when this text changes, so it holds reason codes,
    never numbers that move every interval."""
    actions, blocked = plan.for_node(node)
    if actions:
        return ", ".join(f"{'would-' if a.dry_run else ''}{a.kind}: {a.reason}" for a in actions)
    if blocked:
        return ", ".join(f"blocked {b.kind}: {b.reason}" for b in blocked)
    if stale and withheld:
        return f"withheld: {withheld.split(':')[0]}"  # the code only: the value in the reason moves every interval
    if stale:
        return "stale: no complete metric window"
    return "cordoned: waiting for hysteresis.healthyFor" if cordoned_by_us else "none"


class Remediator:
    def __init__(
        self,
        kube: Kube,
        policy: dict[str, Any],
        events: EventSink,
        tracker: MigrationTracker | None,
        drain: DrainSpec | None = None,
        gate: CheckpointGate | None = None,
        pods_on_node: Callable[[str], list[dict[str, Any]]] | None = None,
        remediation: Remediation | None = None,
    ):
        self.kube = kube
        self.remediation = remediation
        self.pods_on_node = pods_on_node or kube.pods_on_node  # the watch cache in the operator
        self.policy_ref = policy
        self.name = policy["metadata"]["name"]
        self.events = events
        self.tracker = tracker
        self.drain = drain or DrainSpec()
        self.grace = self.drain.grace_period_seconds
        self.gate = gate

    def _event(self, node: dict[str, Any], kind: str, reason: str, message: str) -> None:
        name = node.get("metadata", {}).get("name")
        self.events(node_ref(node), kind, reason, message)
        self.events(self.policy_ref, kind, reason, f"node {name}: {message}")

    def run(self, plan: Plan, nodes: dict[str, dict[str, Any]], previous: dict[str, str], now: float) -> list[Record]:
        """Act on every real action; report dry runs and blocked actions when the node's
        decision changed since the last interval (``previous``: node -> last decision)."""
        records: list[Record] = []
        for action in plan.actions:
            node = nodes[action.node]
            if action.dry_run:
                if previous.get(action.node) != decision_text(plan, action.node, False):
                    self._event(node, "Normal", f"Would{action.kind.title().replace('-', '')}", action.message)
                    records.append(Record(now, action.node, action.kind, "dry-run", action.reason, action.message))
                continue
            records.append(self._act(action, node, now))
        for blocked in plan.blocked:
            node = nodes[blocked.node]
            changed = previous.get(blocked.node) != decision_text(plan, blocked.node, False)
            if changed:
                self._event(node, "Warning", blocked.reason, f"{blocked.kind} blocked: {blocked.message}")
            if blocked.reason == "DrainTimedOut":
                self.kube.patch_node(blocked.node, {"metadata": {"annotations": {A.DRAIN_STATE: "timed-out"}}})
            if blocked.reason == "RemediationTimedOut":
                self.kube.patch_node(blocked.node, {"metadata": {"annotations": {A.REMEDIATION_STATE: "gave-up"}}})
            if changed:
                records.append(Record(now, blocked.node, blocked.kind, "blocked", blocked.reason, blocked.message))
        return records

    def _act(self, action: Action, node: dict[str, Any], now: float) -> Record:
        if action.kind == CORDON:
            self.kube.patch_node(action.node, cordon_patch(node, self.name, action.message, now))
            self._event(node, "Normal", "Cordoned", f"cordoned by FaultTolerancePolicy {self.name}: {action.message}")
            self._since_alarm(node, "cordon", now)
            return Record(now, action.node, CORDON, "done", action.reason, action.message)
        if action.kind == UNCORDON:
            if parse_refs(ann_of(node).get(A.REMEDIATIONS)):
                end_remediation(self.kube, self.events, node, "the node recovered and is uncordoned")
            self.kube.patch_node(action.node, uncordon_patch())
            M.DRAIN_BLOCKED_AGE.remove(self.name, action.node)  # absent is fine
            self._event(node, "Normal", "Uncordoned", f"uncordoned: {action.message}")
            return Record(now, action.node, UNCORDON, "done", action.reason, action.message)
        if action.kind in (DRAIN, FORCE_DRAIN):
            return self._drain(action, node, now, force=action.kind == FORCE_DRAIN)
        if action.kind == REMEDIATE:
            return self._remediate(action, node, now)
        if action.kind == END_REMEDIATION:
            message = end_remediation(self.kube, self.events, node, action.message)
            return Record(now, action.node, END_REMEDIATION, "done", action.reason, message)
        raise ValueError(f"unknown action {action.kind!r}")

    def _since_alarm(self, node: dict[str, Any], step: str, now: float) -> None:
        """How long after the alarm (risk first at the cordon threshold) this step came."""
        alarm = A.parse_time(ann_of(node).get(A.RISK_SINCE))
        if alarm is not None and now >= alarm:
            M.ALARM_TO_ACTION.labels(self.name, step).observe(now - alarm)

    def _remediate(self, action: Action, node: dict[str, Any], now: float) -> Record:
        """Create the remediation object of template ``action.step`` for the node."""
        assert self.remediation is not None
        name = action.node
        ref = self.remediation.templates[action.step]
        try:
            template = self.kube.get_object(ref.api_version, ref.kind, ref.namespace, ref.name)
            created = self.kube.create_object(remediation_object(template, ref, name, self.policy_ref, now))
            refs = parse_refs(ann_of(node).get(A.REMEDIATIONS))
            if action.step > 0 and refs:
                api_version, kind, namespace = refs[-1]
                patch = {"metadata": {"annotations": {A.REMEDIATION_TIMED_OUT: A.rfc3339(now)}}}
                self.kube.patch_object(api_version, kind, namespace, name, patch)
        except (NotFound, Forbidden) as err:
            reason = "RemediationForbidden" if isinstance(err, Forbidden) else "RemediationTemplateNotFound"
            message = f"could not hand the node to {ref.remediation_kind}: {err}"
            self._event(node, "Warning", reason, message)
            return Record(now, name, REMEDIATE, "blocked", reason, message)
        listed = " ".join(dict.fromkeys([*(ann_of(node).get(A.REMEDIATIONS) or "").split(), object_ref(ref)]))
        self.kube.patch_node(
            name,
            {
                "metadata": {
                    "annotations": {
                        A.REMEDIATIONS: listed,
                        A.REMEDIATION_STEP: str(action.step),
                        A.REMEDIATION_STARTED: A.rfc3339(now),
                        A.REMEDIATION_STATE: "running",
                    }
                }
            },
        )
        what = f"{ref.remediation_kind} {ref.namespace}/{name}" + ("" if created else " (already there)")
        if action.step == 0:
            self._event(node, "Normal", "RemediationCreated", f"{action.message}; created {what}")
        else:
            self._event(node, "Warning", "RemediationEscalated", f"{action.message}; created {what}")
        if action.step == 0:
            self._since_alarm(node, "remediation", now)
        return Record(now, name, REMEDIATE, "done", action.reason, f"created {what}: {action.message}")

    def _drain(self, action: Action, node: dict[str, Any], now: float, force: bool) -> Record:
        name = action.node
        ann = node.get("metadata", {}).get("annotations") or {}
        if not ann.get(A.DRAIN_STARTED):
            self.kube.patch_node(name, {"metadata": {"annotations": {A.DRAIN_STARTED: A.rfc3339(now), A.DRAIN_STATE: "draining"}}})
            self._event(node, "Normal", "DrainStarted", action.message)
        on_node = self.pods_on_node(name)
        pods = to_evict(on_node, self.drain)
        if not pods:
            stay = left_alone(on_node, self.drain)
            message = "no evictable pods left on the node" + (f"; left alone: {', '.join(stay[:5])}" if stay else "")
            self.kube.patch_node(name, {"metadata": {"annotations": {A.DRAIN_STATE: "done"}}})
            self._event(node, "Normal", "DrainComplete", message)
            self._since_alarm(node, "drain-done", now)
            M.DRAIN_BLOCKED_AGE.remove(self.name, name)  # absent is fine
            return Record(now, name, action.kind, "done", "DrainComplete", message)
        evicted, blocked, waiting, forbidden = [], [], [], []
        started = A.parse_time(ann.get(A.DRAIN_STARTED)) or now
        for pod in pods:
            meta = pod["metadata"]
            ref = f"{meta['namespace']}/{meta['name']}"
            gate = self.gate.before_evict(pod, name, started, now) if self.gate is not None and not force else "evict"
            if gate != "evict":
                if gate == "requested":
                    self.events(
                        pod_ref(pod),
                        "Normal",
                        "CheckpointRequested",
                        f"node {name} is being drained; evicting once the job acknowledges or the ack timeout passes",
                    )
                waiting.append(ref)
                continue
            if force:
                try:
                    self.kube.delete_pod(meta["namespace"], meta["name"], self.grace)
                except Forbidden as err:
                    forbidden.append(str(err))
                    continue
                outcome, detail = EVICTED, ""
            else:
                outcome, detail = self.kube.evict(meta["namespace"], meta["name"], self.grace)
            if outcome == EVICTED:
                evicted.append(ref)
                owner = owner_key(meta)
                if self.tracker is not None and owner:
                    self.tracker.record_eviction(owner, name, now)
            elif outcome == BLOCKED:
                blocked.append(f"{ref} ({detail})")
        verb = "deleted" if force else "evicted"
        if evicted:
            self._event(node, "Normal", "PodsEvicted" if not force else "PodsDeleted", f"{verb} {len(evicted)}: {', '.join(evicted[:10])}")
        if waiting:
            self._event(node, "Normal", "WaitingForCheckpoint", f"{len(waiting)} training pods checkpoint first: {', '.join(waiting[:5])}")
        if forbidden:
            message = f"{len(forbidden)} pods not deleted: {forbidden[0]}"
            self._event(node, "Warning", "ForceDrainForbidden", message)
            return Record(now, name, action.kind, "blocked", "ForceDrainForbidden", message)
        if blocked:
            M.DRAIN_BLOCKED_AGE.labels(self.name, name).set(now - started)
            self._event(
                node,
                "Warning",
                "EvictionBlocked",
                f"{len(blocked)} evictions refused (HTTP 429, a PodDisruptionBudget); retrying next interval: " + "; ".join(blocked[:5]),
            )
            return Record(now, name, action.kind, "blocked", "EvictionBlocked", "; ".join(blocked[:5]))
        extra = f"; {len(waiting)} training pods checkpointing first" if waiting else ""
        return Record(now, name, action.kind, "done", action.reason, f"{verb} {len(evicted)} pods{extra}")


def ann_of(node: dict[str, Any]) -> dict[str, str]:
    return (node.get("metadata") or {}).get("annotations") or {}


def end_remediation(kube: Kube, events: EventSink, node: dict[str, Any], why: str) -> str:
    """Delete every remediation object the node's annotation names, and the annotations."""
    name = node["metadata"]["name"]
    refs = parse_refs(ann_of(node).get(A.REMEDIATIONS))
    for api_version, kind, namespace in refs:
        kube.delete_object(api_version, kind, namespace, name)
    marks = (A.REMEDIATIONS, A.REMEDIATION_STEP, A.REMEDIATION_STARTED, A.REMEDIATION_STATE)
    kube.patch_node(name, {"metadata": {"annotations": dict.fromkeys(marks)}})
    message = f"deleted {', '.join(f'{k} {ns}/{name}' for _, k, ns in refs) or 'nothing'}: {why}"
    events(node_ref(node), "Normal", "RemediationEnded", message)
    return message


def release_nodes(kube: Kube, events: EventSink, policy: dict[str, Any], nodes: list[dict[str, Any]], uncordon: bool) -> list[str]:
    """Give back the nodes ``policy`` let go (ownership.py): with ``uncordon`` (the policy was
    deleted) its cordons are undone; without (the node left its nodeSelector) they are
    handed to a human, and the stale marks it left (risk, decision, labels) are swept.
    Remediation objects it created for the node are deleted either way. Returns the nodes written."""
    name = policy["metadata"]["name"]
    written = []
    for node in nodes:
        patch = release_patch(node, name, uncordon)
        if not patch:
            continue
        had_cordon = cordoned_by(node) == name
        mine = name in (ann_of(node).get(A.CORDONED_BY), ann_of(node).get(A.POLICY))  # also after a human took the cordon
        if mine and parse_refs(ann_of(node).get(A.REMEDIATIONS)):
            end_remediation(kube, events, node, f"FaultTolerancePolicy {name} let the node go")
        kube.patch_node(node["metadata"]["name"], patch)
        written.append(node["metadata"]["name"])
        if not uncordon:
            M.STALE_STATE_SWEPT.labels(name).inc()
        if had_cordon and uncordon:
            events(
                node_ref(node), "Normal", "CordonReleased", f"FaultTolerancePolicy {name} was deleted; uncordoned the node it had cordoned"
            )
        elif had_cordon:
            events(
                node_ref(node),
                "Warning",
                "CordonHandedOver",
                f"FaultTolerancePolicy {name} no longer selects this node; it stays cordoned and is yours now: "
                f"kubectl uncordon {node['metadata']['name']} once it is healthy",
            )
    return written
