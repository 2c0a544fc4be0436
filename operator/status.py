"""Policy status: Kubernetes-style conditions and the counts the printer columns show."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ftmoe.operator.annotations import rfc3339

READY, METRICS, MODEL, REMEDIATION = "Ready", "MetricsAvailable", "ModelLoaded", "RemediationAllowed"
EXCLUSIVE = "NodesExclusive"  # False when another policy selects some of the same nodes
INPUTS = "InputsValid"  # False while some complete windows are not trusted (impossible or unseen values, a NaN risk)
SHARED_WITH_POLICY, EXCLUSIVE_OK = "NodesSharedWithPolicy", "NoOtherPolicy"


@dataclass(frozen=True)
class Condition:
    type: str
    status: bool | None  # None -> Unknown
    reason: str
    message: str


def merge_conditions(previous: list[dict[str, Any]], new: list[Condition], generation: int, now: float) -> list[dict[str, Any]]:
    """New conditions, keeping lastTransitionTime where the status did not change."""
    before = {c.get("type"): c for c in previous or []}
    out = []
    for c in new:
        status = "Unknown" if c.status is None else ("True" if c.status else "False")
        old = before.get(c.type, {})
        since = old.get("lastTransitionTime") if old.get("status") == status else None
        out.append(
            {
                "type": c.type,
                "status": status,
                "reason": c.reason,
                "message": c.message[:1000],
                "lastTransitionTime": since or rfc3339(now),
                "observedGeneration": generation,
            }
        )
    return out


def ready_condition(conditions: list[Condition]) -> Condition:
    """Ready is True when the model is loaded and metrics are available."""
    for c in conditions:
        if c.type in (MODEL, METRICS) and c.status is not True:
            return Condition(READY, False, c.reason, c.message)
    return Condition(READY, True, "Predicting", "the model is loaded and metrics are available")
