"""When to hand a node to a remediator, escalate, give up or end: a pure function over
the decision's inputs, called by ``decide`` (decisions.py).

Node Healthcheck's rules, on a predicted fault: a node this policy cordoned that stays at
risk for ``remediation.after`` (in mode Evict, once its drain has ended), or whose
predicted fault arrives (NotReady, or a condition from learning.labels), gets a remediation
object from the first template; each template's ``timeout`` passes it to the next; after
the last one's, the operator gives up and a human is told. The objects go when the node is
healthy again. Remediations in flight count against maxUnavailable, and a storm, a closed
maintenance window or another controller's maintenance stop new ones.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ftmoe.operator.decisions_types import END_REMEDIATION, REMEDIATE, Action, Blocked, NodeFacts, Plan, usable

if TYPE_CHECKING:
    from ftmoe.operator.decisions import Rules


def plan_remediations(rules: Rules, nodes: list[NodeFacts], plan: Plan, now: float) -> None:
    """Add remediate / end-remediation actions and blocked remediations to ``plan``. ``nodes``:
    the policy's nodes it cordoned, and those with a remediation in flight."""
    spec = rules.spec.remediation
    if spec is None or rules.spec.mode == "Observe":
        return
    cordon = rules.spec.thresholds.cordon
    in_flight = plan.remediating
    for n in nodes:
        healthy = n.ready and not n.pressure and not n.fault_arrived and usable(n.risk) and (n.risk or 0.0) < cordon
        if n.remediation_step is not None:
            if healthy:
                plan.actions.append(Action(n.name, END_REMEDIATION, "NodeHealthy", f"risk {n.risk:.2f} below {cordon:g}, node Ready"))
                continue
            if not (n.unschedulable and n.cordoned_by == rules.policy):
                continue  # a human took the node over: no escalation; the objects go once it is healthy
            step = spec.templates[min(n.remediation_step, len(spec.templates) - 1)]
            started = n.remediation_started if n.remediation_started is not None else now
            if n.remediation_gave_up or step.timeout is None or now - started < step.timeout:
                continue
            if n.remediation_step + 1 < len(spec.templates):
                nxt = spec.templates[n.remediation_step + 1]
                message = (
                    f"{step.remediation_kind} ran {now - started:.0f}s (timeout {step.timeout:g}s); escalating to {nxt.remediation_kind}"
                )
                plan.actions.append(Action(n.name, REMEDIATE, "RemediationEscalated", message, step=n.remediation_step + 1))
            else:
                plan.blocked.append(
                    Blocked(
                        n.name,
                        REMEDIATE,
                        "RemediationTimedOut",
                        f"the last remediation, {step.remediation_kind}, ran {now - started:.0f}s (timeout {step.timeout:g}s) and "
                        "the node is still unhealthy; a human should look at it",
                    )
                )
            continue
        if n.maintenance is not None or healthy or not (n.unschedulable and n.cordoned_by == rules.policy):
            continue
        why = trigger(rules, n, now)
        if why is None:
            continue
        if plan.storm:
            plan.blocked.append(Blocked(n.name, REMEDIATE, "StormBreakerTripped", plan.storm_message))
        elif not plan.window[0]:
            plan.blocked.append(Blocked(n.name, REMEDIATE, plan.window[1], f"{why}, but {plan.window[2]}"))
        elif in_flight >= rules.max_unavailable:
            plan.blocked.append(
                Blocked(
                    n.name,
                    REMEDIATE,
                    "BudgetExhausted",
                    f"{why}, but {in_flight} remediations are in flight and maxUnavailable is {rules.max_unavailable}",
                )
            )
        else:
            in_flight += 1
            plan.actions.append(
                Action(n.name, REMEDIATE, "FaultArrived" if n.fault_arrived or not n.ready else "RiskPersisted", why, step=0)
            )


def trigger(rules: Rules, n: NodeFacts, now: float) -> str | None:
    """Why ``n`` should be remediated now, or None."""
    spec = rules.spec.remediation
    assert spec is not None
    if n.fault_arrived or not n.ready:
        return "the predicted fault arrived (the node is NotReady or shows a labelled fault condition)"
    if not usable(n.risk) or (n.risk or 0.0) < rules.spec.thresholds.cordon or n.cordoned_at is None:
        return None
    if rules.spec.mode == "Evict" and n.drain_state not in ("done", "timed-out"):
        return None  # the drain comes first
    since = max(n.cordoned_at, n.risk_since if n.risk_since is not None else n.cordoned_at)
    if now - since < spec.after:
        return None
    return f"risk {n.risk:.2f} stayed at or above {rules.spec.thresholds.cordon:g} for {now - since:.0f}s after the cordon"
