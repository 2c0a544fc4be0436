"""Policies that select the same nodes.

Node annotations, the at-risk label and the cordon are per node, so two policies over one
node overwrite each other's marks and can each count the other's cordon against its own
budget. The operator does not pick a winner (two Observe policies over the same nodes are
a legitimate comparison, as bench/drift.py does); it says so in a condition and an event.
"""

from __future__ import annotations

from typing import Any

from ftmoe.operator.policy import PolicyError, PolicySpec, node_selected


def shared_nodes(name: str, selected: list[str], policies: list[dict[str, Any]], nodes: list[dict[str, Any]]) -> dict[str, int]:
    """Other policy -> how many of ``selected`` it selects too. A policy whose spec does not
    parse selects nothing (its own status says why)."""
    mine = set(selected)
    shared: dict[str, int] = {}
    for other in policies:
        other_name = other["metadata"]["name"]
        if other_name == name or other["metadata"].get("deletionTimestamp"):
            continue
        try:
            spec = PolicySpec.from_dict(other.get("spec") or {})
        except PolicyError:
            continue
        count = sum(1 for n in nodes if n["metadata"]["name"] in mine and node_selected(n["metadata"].get("labels") or {}, spec))
        if count:
            shared[other_name] = count
    return shared


def overlap_message(shared: dict[str, int], total: int) -> str:
    parts = ", ".join(f"{count} of {total} with {other}" for other, count in sorted(shared.items()))
    return (
        f"nodes also selected by other policies ({parts}): their annotations, label and cordons are per node, "
        "so narrow spec.nodeSelector until each node has one policy"
    )
