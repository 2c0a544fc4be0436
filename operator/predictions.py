"""NodeFaultPrediction objects: one per selected node and policy, owned by the policy."""

from __future__ import annotations

from typing import Any

from ftmoe.operator.annotations import rfc3339, shown_risk
from ftmoe.operator.costs import Costed
from ftmoe.operator.decisions import Plan
from ftmoe.operator.durations import format_duration
from ftmoe.operator.inference import NodePrediction
from ftmoe.operator.policy import GROUP, VERSION, PolicySpec


def prediction_name(policy: str, node: str) -> str:
    return f"{policy}.{node}"[:253]


def drivers_summary(prediction: NodePrediction) -> str:
    """The strongest driver and how many more, short enough for one `kubectl get -o wide` line."""
    if not prediction.drivers:
        return ""
    top = prediction.drivers[0]
    more = len(prediction.drivers) - 1
    return f"{top.feature} {top.zscore:+.1f}σ" + (f" (+{more} more)" if more else "")


def action_summary(
    plan: Plan, node: str, prediction: NodePrediction | None, cordoned_by_us: bool, spec: PolicySpec, withheld: str | None = None
) -> tuple[str, str]:
    """(action, reason) for the printer columns: what happened, or would have, and why."""
    actions, blocked = plan.for_node(node)
    if actions:
        a = actions[-1]
        return ("would-" if a.dry_run else "") + a.kind, a.message
    if blocked:
        return "blocked", f"{blocked[0].kind}: {blocked[0].reason}: {blocked[0].message}"
    if prediction is None and withheld:
        return "withheld", f"{withheld}; not acted on"
    if prediction is None:
        return "stale", "no complete metric window this interval: not acted on"
    if cordoned_by_us:
        return "cordoned", "cordoned by this policy; uncordon after hysteresis.healthyFor of low risk"
    if node in plan.costs and plan.costs[node][0].action == "annotate":
        return "annotate", f"the cost model rates acting costlier than the fault: {plan.costs[node][0].summary()}"
    if prediction.risk >= spec.thresholds.cordon:
        # status.riskSince has the time; the line stays short enough for `kubectl get nfp -o wide`.
        return "annotate", f"risk >= cordon threshold; waiting for hysteresis.riskFor ({format_duration(spec.hysteresis.risk_for)})"
    # No risk value in the text: status.risk has it, and a reason that changed with every
    # wobble of the second decimal would rewrite the prediction each interval (the deadband
    # in operator/annotations.py holds the shown risk still, not this line).
    if prediction.risk >= spec.thresholds.annotate:
        return "annotate", f"risk >= annotate threshold {spec.thresholds.annotate:g}"
    return "none", f"risk below annotate threshold {spec.thresholds.annotate:g}"


def prediction_body(
    policy: dict[str, Any],
    node: str,
    prediction: NodePrediction | None,
    action: tuple[str, str],
    risk_since: float | None,
    window_end: float,
    model_version: str,
    spec: PolicySpec,
    costs: tuple[Costed, list[Costed]] | None = None,
) -> dict[str, Any]:
    meta = policy["metadata"]
    status: dict[str, Any] = {
        "action": action[0],
        "reason": action[1][:1000],
        "windowEnd": rfc3339(window_end),
        "horizon": format_duration(spec.horizon),
        "modelVersion": model_version,
        "riskSince": rfc3339(risk_since) if risk_since is not None else None,
    }
    if prediction is not None:
        status.update(
            {
                "risk": round(prediction.risk, 4),
                "faultType": prediction.fault_type,
                "scores": {k: round(v, 4) for k, v in prediction.scores.items()},
                "drivers": [{"feature": d.feature, "value": round(d.value, 6), "zscore": round(d.zscore, 2)} for d in prediction.drivers],
                "driversSummary": drivers_summary(prediction),
                "riskShown": shown_risk(prediction.risk),
                # Below the annotate threshold no fault is expected, so a type would read like an alarm.
                "typeShown": prediction.fault_type if prediction.risk >= spec.thresholds.annotate else "-",
            }
        )
    else:
        status.update(
            {"risk": None, "faultType": None, "scores": None, "drivers": None, "driversSummary": None, "riskShown": "-", "typeShown": "-"}
        )
    status["cost"] = None
    if costs is not None:
        chosen, options = costs
        status["cost"] = {
            "chosen": chosen.action,
            "candidates": [
                {
                    "action": o.action,
                    "resourceCost": round(o.resource_cost, 1),
                    "faultImpact": round(o.fault_impact, 1),
                    "total": round(o.total, 1),
                }
                for o in options
            ],
        }
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "NodeFaultPrediction",
        "metadata": {
            "name": prediction_name(meta["name"], node),
            "labels": {"ftmoe.io/policy": meta["name"], "ftmoe.io/node": node[:63]},
            "ownerReferences": [
                {
                    "apiVersion": f"{GROUP}/{VERSION}",
                    "kind": "FaultTolerancePolicy",
                    "name": meta["name"],
                    "uid": meta["uid"],
                    "controller": True,
                    "blockOwnerDeletion": False,
                }
            ],
        },
        "spec": {"node": node, "policy": meta["name"]},
        "status": status,
    }
