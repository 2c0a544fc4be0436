"""Whose cordon it is (the API server's managedFields, not only our annotation), and what a
policy gives back when it lets a node go."""

from __future__ import annotations

from typing import Any

from ftmoe.operator import annotations as A
from ftmoe.operator.ownership import FIELD_MANAGER, cordoned_by, release_patch


def node(manager: str | None, **ann: str) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": "n",
        "annotations": {A.CORDONED_BY: "p", A.POLICY: "p", A.RISK: "0.91", **ann},
        "labels": {A.RISK_LABEL: "0.91", A.AT_RISK_LABEL: "true", "pool": "gpu"},
    }
    if manager is not None:
        meta["managedFields"] = [
            {"manager": "kube-controller-manager", "operation": "Update", "fieldsV1": {"f:spec": {"f:taints": {}}}},
            {"manager": manager, "operation": "Update", "fieldsV1": {"f:spec": {"f:unschedulable": {}}}},
        ]
    return {"metadata": meta, "spec": {"unschedulable": True}}


def test_our_cordon_is_ours_and_a_human_recordon_is_theirs() -> None:
    assert cordoned_by(node(FIELD_MANAGER)) == "p"
    assert cordoned_by(node("kubectl-cordon")) is None, "uncordon + cordon by a human within one interval"
    assert cordoned_by(node(None)) == "p", "no managedFields: the annotation is all there is"
    uncordoned = node(FIELD_MANAGER)
    uncordoned["spec"] = {}
    assert cordoned_by(uncordoned) is None


def test_deleting_the_policy_uncordons_and_clears_only_its_own_marks() -> None:
    patch = release_patch(node(FIELD_MANAGER), "p", uncordon=True)
    assert patch["spec"] == {"unschedulable": None}
    assert patch["metadata"]["annotations"][A.CORDONED_BY] is None and patch["metadata"]["annotations"][A.RISK] is None
    assert patch["metadata"]["labels"] == {A.AT_RISK_LABEL: None, A.RISK_LABEL: None}
    assert release_patch(node(FIELD_MANAGER), "other", uncordon=True) == {}, "another policy's node is left alone"


def test_a_human_cordon_is_never_undone_and_a_deselected_node_stays_cordoned() -> None:
    assert "spec" not in release_patch(node("kubectl-cordon"), "p", uncordon=True)
    handed = release_patch(node(FIELD_MANAGER), "p", uncordon=False)
    assert "spec" not in handed and handed["metadata"]["annotations"][A.CORDONED_BY] is None
