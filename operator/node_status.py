"""Reading a Node's status conditions."""

from __future__ import annotations

from typing import Any

PRESSURE = ("MemoryPressure", "DiskPressure", "PIDPressure")


def statuses(node: dict[str, Any]) -> dict[str, str]:
    """Every condition's status by type, read once: facts and the ground truth each ask
    about a dozen types of every node, every interval."""
    return {str(c.get("type")): str(c.get("status")) for c in node.get("status", {}).get("conditions") or []}


def condition(node: dict[str, Any], kind: str) -> str | None:
    """The status ("True", "False", "Unknown") of the node's condition ``kind``, or None; for
    one type. A caller asking about several reads ``statuses`` once."""
    return statuses(node).get(kind)
