"""From Node objects and predictions to the decision function's inputs, and back to the
annotations and labels written on each node."""

from __future__ import annotations

from typing import Any

from ftmoe.operator import annotations as A
from ftmoe.operator.costs import NodeLoad
from ftmoe.operator.decisions import Marks, NodeFacts
from ftmoe.operator.inference import NodePrediction
from ftmoe.operator.node_status import PRESSURE, statuses
from ftmoe.operator.ownership import cordoned_by
from ftmoe.operator.policy import PolicySpec


def facts(node: dict[str, Any], risk: float | None, spec: PolicySpec, load: NodeLoad | None = None) -> NodeFacts:
    meta = node.get("metadata", {})
    ann = meta.get("annotations") or {}
    labels = meta.get("labels") or {}
    status = statuses(node)
    return NodeFacts(
        name=meta["name"],
        risk=risk,
        ready=status.get("Ready") == "True",
        unschedulable=bool(node.get("spec", {}).get("unschedulable")),
        cordoned_by=cordoned_by(node),
        excluded=labels.get(spec.exclude_label) == "true",
        pressure=any(status.get(c) == "True" for c in PRESSURE),
        risk_since=A.parse_time(ann.get(A.RISK_SINCE)),
        healthy_since=A.parse_time(ann.get(A.HEALTHY_SINCE)),
        drain_started=A.parse_time(ann.get(A.DRAIN_STARTED)),
        drain_state=ann.get(A.DRAIN_STATE),
        cordon_history=A.parse_history(ann.get(A.CORDON_HISTORY)),
        load=load or NodeLoad(),
        maintenance=in_maintenance(node, spec),
        fault_arrived=any(status.get(c) == "True" for c in spec.learning.labels if c != "Ready"),
        cordoned_at=A.parse_time(ann.get(A.CORDONED_AT)),
        remediation_step=step if (step := remediation_step(ann)) is not None else None,
        remediation_started=A.parse_time(ann.get(A.REMEDIATION_STARTED)),
        remediation_gave_up=ann.get(A.REMEDIATION_STATE) == "gave-up",
    )


def remediation_step(ann: dict[str, str]) -> int | None:
    try:
        return int(ann[A.REMEDIATION_STEP]) if A.REMEDIATION_STEP in ann else None
    except ValueError:
        return 0  # handed over, step unreadable: the first template's rules apply


def in_maintenance(node: dict[str, Any], spec: PolicySpec) -> str | None:
    """Why another controller is working on the node (one of spec.maintenance's taints or labels), or None."""
    taints = {t.get("key") for t in (node.get("spec") or {}).get("taints") or []}
    for key in spec.maintenance.taints:
        if key in taints:
            return f"taint {key}"
    labels = (node.get("metadata") or {}).get("labels") or {}
    for key in spec.maintenance.labels:
        if key in labels:
            return f"label {key}"
    return None


def prediction_patch(
    node: dict[str, Any], policy: str, prediction: NodePrediction | None, marks: Marks, decision: str, spec: PolicySpec, now: float
) -> dict[str, Any]:
    """The merge patch of the informational annotations and label; {} when nothing changed.

    Without a prediction the last risk stays (``predicted-at`` shows its age) and the
    decision says why there is no newer one."""
    meta = node.get("metadata", {})
    ann = meta.get("annotations") or {}
    labels = meta.get("labels") or {}
    want: dict[str, str | None] = {
        A.POLICY: policy,
        A.DECISION: decision,
        A.RISK_SINCE: A.rfc3339(marks.risk_since) if marks.risk_since is not None else None,
        A.HEALTHY_SINCE: A.rfc3339(marks.healthy_since) if marks.healthy_since is not None else None,
    }
    label: dict[str, str | None] = {}
    if prediction is not None:
        t = spec.thresholds
        want[A.RISK] = A.shown_risk_after(ann.get(A.RISK), prediction.risk, (t.annotate, t.cordon, t.evict))
        want[A.FAULT_TYPE] = prediction.fault_type
        if ann.get(A.RISK) != want[A.RISK] or ann.get(A.FAULT_TYPE) != want[A.FAULT_TYPE]:
            # When the prediction last changed: a steady node costs no API write per interval.
            want[A.PREDICTED_AT] = A.rfc3339(now)
        label[A.AT_RISK_LABEL] = "true" if prediction.risk >= spec.thresholds.annotate else None
        label[A.RISK_LABEL] = want[A.RISK]
    if ann.get(A.CORDONED_BY) and cordoned_by(node) is None:
        # Someone uncordoned a node we had cordoned, or cordoned it again themselves: it is theirs to decide now.
        want.update({A.CORDONED_BY: None, A.CORDON_REASON: None, A.CORDONED_AT: None, A.DRAIN_STARTED: None, A.DRAIN_STATE: None})
    ann_patch = {k: v for k, v in want.items() if ann.get(k) != v}
    label_patch = {k: v for k, v in label.items() if labels.get(k) != v}
    patch: dict[str, Any] = {}
    if ann_patch or label_patch:
        patch["metadata"] = {}
        if ann_patch:
            patch["metadata"]["annotations"] = ann_patch
        if label_patch:
            patch["metadata"]["labels"] = label_patch
    return patch


def cordon_patch(node: dict[str, Any], policy: str, reason: str, now: float) -> dict[str, Any]:
    ann = node.get("metadata", {}).get("annotations") or {}
    history = (*A.parse_history(ann.get(A.CORDON_HISTORY)), now)
    return {
        "spec": {"unschedulable": True},
        "metadata": {
            "annotations": {
                A.CORDONED_BY: policy,
                A.CORDON_REASON: reason,
                A.CORDONED_AT: A.rfc3339(now),
                A.CORDON_HISTORY: A.format_history(history),
                A.DRAIN_STARTED: None,
                A.DRAIN_STATE: None,
            }
        },
    }


def uncordon_patch() -> dict[str, Any]:
    return {
        "spec": {"unschedulable": None},
        "metadata": {
            "annotations": {A.CORDONED_BY: None, A.CORDON_REASON: None, A.CORDONED_AT: None, A.DRAIN_STARTED: None, A.DRAIN_STATE: None}
        },
    }
