"""Whose cordon is it, and giving a policy's nodes back when it lets them go.

The ``ftmoe.io/cordoned-by`` annotation alone cannot tell a human's cordon from ours: after
``kubectl uncordon`` then ``kubectl cordon`` within one interval the node looks the same.
The API server can: its managedFields record which field manager last set
``spec.unschedulable``. The operator writes nodes as field manager ``ftmoe-operator``; a
cordon another manager set (``kubectl-cordon``, a console, another controller) is not ours,
whatever the annotation says. An API server that keeps no managedFields leaves the
annotation as the only evidence.

A policy lets a node go when the policy is deleted (its cordon is undone: the operator
uncordons what it cordoned and removes what it wrote) or when its nodeSelector no longer
selects the node (the cordon is handed to a human: the node stays cordoned, our
ownership marks go, and a Warning event says so, since the node may still be failing).
"""

from __future__ import annotations

from typing import Any

from ftmoe.operator import annotations as A

FIELD_MANAGER = "ftmoe-operator"

# What a policy writes on a node for itself (CORDON_HISTORY stays: escalation counts a node's cordons, whoever asks).
_POLICY_ANNOTATIONS = (A.POLICY, A.DECISION, A.RISK, A.FAULT_TYPE, A.PREDICTED_AT, A.RISK_SINCE, A.HEALTHY_SINCE)
_CORDON_ANNOTATIONS = (A.CORDONED_BY, A.CORDON_REASON, A.CORDONED_AT, A.DRAIN_STARTED, A.DRAIN_STATE)


def unschedulable_managers(node: dict[str, Any]) -> set[str] | None:
    """The field managers that set spec.unschedulable, or None when the server keeps no managedFields."""
    entries = (node.get("metadata") or {}).get("managedFields")
    if entries is None:
        return None
    return {e.get("manager", "") for e in entries if "f:unschedulable" in ((e.get("fieldsV1") or {}).get("f:spec") or {})}


def cordoned_by(node: dict[str, Any]) -> str | None:
    """The policy whose cordon this is, or None (not cordoned, nobody's, or a human's since)."""
    ann = (node.get("metadata") or {}).get("annotations") or {}
    owner = ann.get(A.CORDONED_BY)
    if not owner or not (node.get("spec") or {}).get("unschedulable"):
        return None
    managers = unschedulable_managers(node)
    if managers is not None and FIELD_MANAGER not in managers:
        return None  # someone else set the cordon after ours
    return owner


def release_patch(node: dict[str, Any], policy: str, uncordon: bool) -> dict[str, Any]:
    """Remove what ``policy`` wrote on the node; with ``uncordon``, also undo its cordon."""
    meta = node.get("metadata") or {}
    ann, labels = meta.get("annotations") or {}, meta.get("labels") or {}
    ours = cordoned_by(node) == policy
    drop = [k for k in _POLICY_ANNOTATIONS if k in ann] if ann.get(A.POLICY) == policy else []
    if ann.get(A.CORDONED_BY) == policy:
        drop += [k for k in _CORDON_ANNOTATIONS if k in ann]
    patch: dict[str, Any] = {}
    if drop:
        patch["metadata"] = {"annotations": dict.fromkeys(drop)}
    if ann.get(A.POLICY) == policy and any(k in labels for k in (A.AT_RISK_LABEL, A.RISK_LABEL)):
        patch.setdefault("metadata", {})["labels"] = {A.AT_RISK_LABEL: None, A.RISK_LABEL: None}
    if uncordon and ours:
        patch["spec"] = {"unschedulable": None}
    return patch
