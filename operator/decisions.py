"""What to do about each node this interval: one pure function, ``decide``.

Plain data in (the policy's rules, one ``NodeFacts`` per selected node, the time), a
``Plan`` out: actions with reasons, blocked actions with reasons, and the hysteresis
marks to store on the nodes. No I/O, so every safety rule is property-tested
(tests/operator/test_decisions.py):

- never more nodes unavailable than the budget allows (NotReady and cordoned count);
- nothing on excluded nodes, on nodes without fresh data, or while paused;
- the storm breaker stops every cordon, drain and remediation when too many nodes are at
  risk, or were cordoned within a window; latched, it stays open until a human resets it;
- maintenance windows (spec.schedule) and another controller's maintenance hold new ones;
- hysteresis both ways: risk must hold ``risk_for`` before a cordon, and the node must
  stay healthy ``healthy_for`` before an uncordon;
- only nodes this policy cordoned are uncordoned or drained;
- in Observe mode every action is a dry run.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ftmoe.operator.costs import ANNOTATE, CHECKPOINT_EVICT, EVICT, choose
from ftmoe.operator.costs import CORDON as COST_CORDON
from ftmoe.operator.decisions_types import (
    CORDON,
    DRAIN,
    END_REMEDIATION,
    FORCE_DRAIN,
    REMEDIATE,
    UNCORDON,
    Action,
    Blocked,
    Marks,
    NodeFacts,
    Plan,
    usable,
)
from ftmoe.operator.policy import Mode, PolicySpec, resolve_count
from ftmoe.operator.remediation_plan import plan_remediations
from ftmoe.operator.schedule import disruptions_allowed

__all__ = [
    "CORDON",
    "DRAIN",
    "END_REMEDIATION",
    "FORCE_DRAIN",
    "REMEDIATE",
    "UNCORDON",
    "Action",
    "Blocked",
    "Marks",
    "NodeFacts",
    "Plan",
    "Rules",
    "decide",
    "usable",
]


@dataclass(frozen=True)
class Rules:
    """A policy's typed spec, with its counts resolved against the number of selected nodes."""

    policy: str
    spec: PolicySpec
    max_unavailable: int
    storm_max_at_risk: int
    storm_max_acted_on: int | None = None
    latched: str | None = None  # a latched storm breaker's trip, held until a human resets it

    @classmethod
    def from_spec(cls, policy: str, spec: PolicySpec, selected: int, latched: str | None = None) -> Rules:
        sb = spec.storm_breaker
        acted = None if sb.max_acted_on is None else storm_count(sb.max_acted_on, selected, "spec.stormBreaker.maxActedOn")
        return cls(
            policy,
            spec,
            resolve_count(spec.max_unavailable, selected, "spec.maxUnavailable"),
            storm_count(sb.max_at_risk, selected, "spec.stormBreaker.maxAtRisk"),
            acted,
            latched,
        )


def storm_count(value: int | str, selected: int, field_name: str) -> int:
    count = resolve_count(value, selected, field_name)
    if isinstance(value, str) and value != "0%":
        count = max(count, 1)  # 30% of 3 nodes rounds to 0, and one node at risk is no storm
    return count


def next_marks(n: NodeFacts, rules: Rules, now: float) -> Marks:
    """Hysteresis clocks: since when the risk has been high, and since when a node this
    policy cordoned has been healthy.

    Only fresh observations count: an interval without a usable risk (stale or missing
    metrics, invalid inputs, a NaN from the model) stops both clocks, so riskFor and
    healthyFor are met only by an unbroken run of fresh intervals. No data is no evidence,
    of risk or of health.

    The healthy clock runs only where it decides something, on the nodes this policy holds
    cordoned (healthyFor gates their uncordon). Kept on every healthy node, it cost each node
    one write when a fleet-wide metrics gap stopped it and one when the gap ended: 5,000
    writes and about two minutes each way at 5,000 nodes (bench/operator.py --scale)."""
    if n.risk is None or not usable(n.risk):
        return Marks(None, None)
    if n.risk >= rules.spec.thresholds.cordon:
        return Marks(n.risk_since if n.risk_since is not None else now, None)
    healthy = n.ready and not n.pressure and n.cordoned_by == rules.policy
    return Marks(None, (n.healthy_since if n.healthy_since is not None else now) if healthy else None)


def decide(rules: Rules, nodes: list[NodeFacts], now: float) -> Plan:
    plan = Plan()
    for n in nodes:
        plan.marks[n.name] = next_marks(n, rules, now)
    fresh = [n for n in nodes if usable(n.risk)]
    plan.at_risk = sorted(n.name for n in fresh if n.risk >= rules.spec.thresholds.cordon)  # type: ignore[operator]  # fresh nodes have a risk
    plan.unavailable = sum(1 for n in nodes if not n.ready or n.unschedulable)
    plan.budget = rules.max_unavailable
    plan.window = disruptions_allowed(rules.spec.schedule, now)
    plan.remediating = sum(1 for n in nodes if n.remediation_step is not None)
    actionable = [n for n in fresh if not n.excluded and n.maintenance is None]
    candidates = sorted(
        (n for n in actionable if not n.unschedulable and n.risk >= rules.spec.thresholds.cordon),  # type: ignore[operator]  # actionable nodes have a risk
        key=lambda n: (-(n.risk or 0.0), n.name),
    )
    ripe = [n for n in candidates if held(plan, n, rules, now)]
    plan.trip = trip_rule(rules, plan, nodes, len(ripe), now)
    plan.storm = plan.trip is not None or rules.latched is not None
    if plan.storm:
        plan.storm_message = plan.trip or f"the storm breaker is latched ({rules.latched})"
        if rules.latched is not None or rules.spec.storm_breaker.latch:
            plan.storm_message += (
                f"; it stays open until reset: kubectl ftmoe reset {rules.policy} "
                f"(or set annotation ftmoe.io/reset-storm-breaker on the policy to a new value)"
            )
    plan.remediation = remediation_condition(rules, plan)
    if rules.spec.paused:
        return plan
    dry = rules.spec.mode == "Observe"
    ours = [n for n in actionable if n.unschedulable and n.cordoned_by == rules.policy]
    for n in fresh:
        if n.maintenance is not None and not n.unschedulable and n.risk >= rules.spec.thresholds.cordon:  # type: ignore[operator]  # fresh nodes have a risk
            message = f"left alone: another controller is working on it ({n.maintenance})"
            plan.blocked.append(Blocked(n.name, CORDON, "InMaintenance", message))

    for n in ours:
        since = plan.marks[n.name].healthy_since
        if since is not None and now - since >= rules.spec.hysteresis.healthy_for:
            plan.actions.append(
                Action(n.name, UNCORDON, "Recovered", f"risk below {rules.spec.thresholds.cordon:g} for {now - since:.0f}s", dry)
            )

    left = rules.max_unavailable - plan.unavailable
    cordoned_now: list[NodeFacts] = []
    evict_now: set[str] = set()
    for n in ripe:
        since = plan.marks[n.name].risk_since
        assert since is not None  # ripe: held long enough
        what = f"risk {n.risk:.2f} >= {rules.spec.thresholds.cordon:g} for {now - since:.0f}s"
        if rules.spec.cost_model is not None:
            chosen, options = choose(float(n.risk or 0.0), n.load, rules.spec.cost_model, allowed_actions(rules.spec.mode))
            plan.costs[n.name] = (chosen, options)
            if chosen.action == ANNOTATE:
                continue  # acting would cost more than the fault it may prevent
            what += f"; cheapest action {chosen.summary()}"
            if chosen.action in (EVICT, CHECKPOINT_EVICT):
                evict_now.add(n.name)
        recent = [t for t in n.cordon_history if now - t <= rules.spec.escalation.window]
        if plan.storm:
            plan.blocked.append(Blocked(n.name, CORDON, "StormBreakerTripped", plan.storm_message))
        elif not plan.window[0]:
            plan.blocked.append(Blocked(n.name, CORDON, plan.window[1], f"{what}, but {plan.window[2]}"))
        elif len(recent) >= rules.spec.escalation.max_cordons_per_node:
            plan.blocked.append(
                Blocked(
                    n.name,
                    CORDON,
                    "Escalated",
                    f"{what}, but the node was cordoned {len(recent)} times in the escalation window; a human should look at it",
                )
            )
        elif left <= 0:
            plan.blocked.append(
                Blocked(
                    n.name,
                    CORDON,
                    "BudgetExhausted",
                    f"{what}, but {plan.unavailable} of at most {rules.max_unavailable} selected nodes are already unavailable",
                )
            )
        else:
            left -= 1
            plan.actions.append(Action(n.name, CORDON, "RiskAboveThreshold", what, dry))
            cordoned_now.append(replace(n, unschedulable=True, cordoned_by=rules.policy))

    if rules.spec.mode == "Evict":
        for n in ours:
            if rules.spec.cost_model is not None and n.drain_started is None and n.risk is not None:
                chosen, options = choose(n.risk, n.load, rules.spec.cost_model, allowed_actions(rules.spec.mode))
                plan.costs[n.name] = (chosen, options)
                if chosen.action in (EVICT, CHECKPOINT_EVICT):
                    evict_now.add(n.name)
        for n in ours + cordoned_now:
            drain = drain_decision(n, rules, plan, now, n.name in evict_now)
            if isinstance(drain, Action):
                plan.actions.append(drain)
            elif isinstance(drain, Blocked):
                plan.blocked.append(drain)
    if not dry:
        mine = [
            n for n in nodes if n.remediation_step is not None or (not n.excluded and n.unschedulable and n.cordoned_by == rules.policy)
        ]
        plan_remediations(rules, mine, plan, now)
    return plan


def held(plan: Plan, n: NodeFacts, rules: Rules, now: float) -> bool:
    """Hysteresis: the node's risk has been high for riskFor."""
    since = plan.marks[n.name].risk_since
    return since is not None and now - since >= rules.spec.hysteresis.risk_for


def trip_rule(rules: Rules, plan: Plan, nodes: list[NodeFacts], ripe: int, now: float) -> str | None:
    """Which storm-breaker rule holds this interval, as a message; None when none does."""
    if len(plan.at_risk) > rules.storm_max_at_risk:
        return (
            f"{len(plan.at_risk)} selected nodes are at risk, more than stormBreaker.maxAtRisk ({rules.storm_max_at_risk}); "
            "a cluster-wide cause is likelier than that many node faults, so no node is cordoned, drained or remediated"
        )
    limit = rules.storm_max_acted_on
    if limit is not None:
        window = rules.spec.storm_breaker.window
        acted = sum(1 for n in nodes if any(0 <= now - t <= window for t in n.cordon_history))
        if ripe and acted + ripe > limit:
            return (
                f"{acted} selected nodes were cordoned in the last {window:g}s and {ripe} more ask for it, more than "
                f"stormBreaker.maxActedOn ({limit}); no node is cordoned, drained or remediated"
            )
    return None


def allowed_actions(mode: Mode) -> tuple[str, ...]:
    """What the cost model may choose in each mode (Observe reports what Evict would do)."""
    return (ANNOTATE, COST_CORDON) if mode == "Cordon" else (ANNOTATE, COST_CORDON, EVICT, CHECKPOINT_EVICT)


def drain_decision(n: NodeFacts, rules: Rules, plan: Plan, now: float, cost_says_evict: bool = False) -> Action | Blocked | None:
    """Start, continue, force or give up the drain of a node this policy cordoned. With the
    cost model, a drain starts when eviction is the cheapest action, not at thresholds.evict."""
    if n.drain_state in ("done", "timed-out") or n.risk is None or not usable(n.risk) or n.risk < rules.spec.thresholds.cordon:
        return None  # finished, no fresh data, or the risk fell: stop moving pods
    start = cost_says_evict if rules.spec.cost_model is not None else n.risk >= rules.spec.thresholds.evict
    if n.drain_started is None and not start:
        return None
    if plan.storm:
        return Blocked(n.name, DRAIN, "StormBreakerTripped", plan.storm_message)
    if n.drain_started is None and not plan.window[0]:
        return Blocked(n.name, DRAIN, plan.window[1], f"risk {n.risk:.2f}, but {plan.window[2]}")
    if n.drain_started is not None and now - n.drain_started > rules.spec.drain.timeout:
        if rules.spec.drain.force:
            return Action(
                n.name,
                FORCE_DRAIN,
                "DrainTimedOut",
                f"drain ran {now - n.drain_started:.0f}s; deleting the remaining pods (drain.force is set)",
            )
        return Blocked(
            n.name,
            DRAIN,
            "DrainTimedOut",
            f"drain ran {now - n.drain_started:.0f}s (timeout {rules.spec.drain.timeout:.0f}s); remaining pods stay. "
            "Set spec.drain.force to delete them, or drain the node by hand",
        )
    verb = "continuing" if n.drain_started is not None else "starting"
    if rules.spec.cost_model is not None:
        chosen = plan.costs.get(n.name)
        return Action(n.name, DRAIN, "CheapestAction", f"{verb} drain: risk {n.risk:.2f}" + (f", {chosen[0].summary()}" if chosen else ""))
    return Action(
        n.name, DRAIN, "RiskAboveEvictThreshold", f"{verb} drain: risk {n.risk:.2f} (evict threshold {rules.spec.thresholds.evict:g})"
    )


def remediation_condition(rules: Rules, plan: Plan) -> tuple[bool, str, str]:
    if rules.spec.paused:
        return False, "Paused", "spec.paused is true: predictions continue, no node is cordoned, drained or uncordoned"
    if plan.storm:
        return False, "StormBreakerLatched" if plan.trip is None else "StormBreakerTripped", plan.storm_message
    if rules.spec.mode == "Observe":
        return False, "ObserveMode", "mode is Observe: actions are reported (would-*), never taken"
    if not plan.window[0]:
        return False, plan.window[1], f"{plan.window[2]}: no new cordon, drain or remediation; recovered nodes are still uncordoned"
    if plan.unavailable >= rules.max_unavailable:
        return (
            False,
            "BudgetExhausted",
            (f"{plan.unavailable} selected nodes are unavailable, maxUnavailable allows {rules.max_unavailable}"),
        )
    return True, "Allowed", f"up to {rules.max_unavailable - plan.unavailable} more nodes may be cordoned"
