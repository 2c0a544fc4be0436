"""What to do about each node this interval: one pure function, ``decide``.

Plain data in (the policy's rules, one ``NodeFacts`` per selected node, the time), a
``Plan`` out: actions with reasons, blocked actions with reasons, and the hysteresis
marks to store on the nodes. No I/O, so every safety rule is property-tested
(tests/operator/test_decisions.py):

- never more nodes unavailable than the budget allows (NotReady and cordoned count);
- nothing on excluded nodes, on nodes without fresh data, or while paused;
- the storm breaker stops every cordon and drain when too many nodes are at risk;
- hysteresis both ways: risk must hold ``risk_for`` before a cordon, and the node must
  stay healthy ``healthy_for`` before an uncordon;
- only nodes this policy cordoned are uncordoned or drained;
- in Observe mode every action is a dry run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from ftmoe.operator.costs import ANNOTATE, CHECKPOINT_EVICT, EVICT, Costed, NodeLoad, choose
from ftmoe.operator.costs import CORDON as COST_CORDON
from ftmoe.operator.policy import Mode, PolicySpec, resolve_count

CORDON, DRAIN, FORCE_DRAIN, UNCORDON = "cordon", "drain", "force-drain", "uncordon"


@dataclass(frozen=True)
class NodeFacts:
    """What the operator knows about one selected node, read from the cluster and the model."""

    name: str
    risk: float | None  # None: no complete, fresh metric window this interval
    ready: bool = True
    unschedulable: bool = False
    cordoned_by: str | None = None
    excluded: bool = False
    pressure: bool = False  # a Memory/Disk/PID pressure condition is True
    risk_since: float | None = None
    healthy_since: float | None = None
    drain_started: float | None = None
    drain_state: str | None = None  # draining | done | timed-out
    cordon_history: tuple[float, ...] = ()
    load: NodeLoad = NodeLoad()  # for the cost model


@dataclass(frozen=True)
class Rules:
    """A policy's typed spec, with its counts resolved against the number of selected nodes."""

    policy: str
    spec: PolicySpec
    max_unavailable: int
    storm_max_at_risk: int

    @classmethod
    def from_spec(cls, policy: str, spec: PolicySpec, selected: int) -> Rules:
        storm = resolve_count(spec.storm_breaker.max_at_risk, selected, "spec.stormBreaker.maxAtRisk")
        if isinstance(spec.storm_breaker.max_at_risk, str) and spec.storm_breaker.max_at_risk != "0%":
            storm = max(storm, 1)  # 30% of 3 nodes rounds to 0, and one node at risk is no storm
        return cls(policy, spec, resolve_count(spec.max_unavailable, selected, "spec.maxUnavailable"), storm)


@dataclass(frozen=True)
class Action:
    node: str
    kind: str  # cordon | drain | force-drain | uncordon
    reason: str  # CamelCase, for events and metrics
    message: str
    dry_run: bool = False


@dataclass(frozen=True)
class Blocked:
    node: str
    kind: str
    reason: str  # BudgetExhausted | StormBreakerTripped | Escalated | DrainTimedOut
    message: str


@dataclass(frozen=True)
class Marks:
    risk_since: float | None
    healthy_since: float | None


@dataclass
class Plan:
    actions: list[Action] = field(default_factory=list)
    blocked: list[Blocked] = field(default_factory=list)
    marks: dict[str, Marks] = field(default_factory=dict)
    at_risk: list[str] = field(default_factory=list)
    storm: bool = False
    unavailable: int = 0
    budget: int = 0
    remediation: tuple[bool, str, str] = (True, "Allowed", "")
    costs: dict[str, tuple[Costed, list[Costed]]] = field(default_factory=dict)  # node -> (chosen, candidates)

    def for_node(self, node: str) -> tuple[list[Action], list[Blocked]]:
        return [a for a in self.actions if a.node == node], [b for b in self.blocked if b.node == node]


def usable(risk: float | None) -> bool:
    """A risk the operator may act on: present and a number in [0, 1] (NaN is not healthy)."""
    return risk is not None and math.isfinite(risk) and 0.0 <= risk <= 1.0


def next_marks(n: NodeFacts, rules: Rules, now: float) -> Marks:
    """Hysteresis clocks: since when the risk has been high, and since when the node healthy.

    Only fresh observations count: an interval without a usable risk (stale or missing
    metrics, invalid inputs, a NaN from the model) stops both clocks, so riskFor and
    healthyFor are met only by an unbroken run of fresh intervals. No data is no evidence,
    of risk or of health."""
    if n.risk is None or not usable(n.risk):
        return Marks(None, None)
    if n.risk >= rules.spec.thresholds.cordon:
        return Marks(n.risk_since if n.risk_since is not None else now, None)
    healthy = n.ready and not n.pressure
    return Marks(None, (n.healthy_since if n.healthy_since is not None else now) if healthy else None)


def decide(rules: Rules, nodes: list[NodeFacts], now: float) -> Plan:
    plan = Plan()
    for n in nodes:
        plan.marks[n.name] = next_marks(n, rules, now)
    fresh = [n for n in nodes if usable(n.risk)]
    plan.at_risk = sorted(n.name for n in fresh if n.risk >= rules.spec.thresholds.cordon)  # type: ignore[operator]  # fresh nodes have a risk
    plan.storm = len(plan.at_risk) > rules.storm_max_at_risk
    plan.unavailable = sum(1 for n in nodes if not n.ready or n.unschedulable)
    plan.budget = rules.max_unavailable
    plan.remediation = remediation_condition(rules, plan)
    if rules.spec.paused:
        return plan
    dry = rules.spec.mode == "Observe"
    actionable = [n for n in fresh if not n.excluded]
    ours = [n for n in actionable if n.unschedulable and n.cordoned_by == rules.policy]

    for n in ours:
        since = plan.marks[n.name].healthy_since
        if since is not None and now - since >= rules.spec.hysteresis.healthy_for:
            plan.actions.append(
                Action(n.name, UNCORDON, "Recovered", f"risk below {rules.spec.thresholds.cordon:g} for {now - since:.0f}s", dry)
            )

    left = rules.max_unavailable - plan.unavailable
    candidates = sorted(
        (n for n in actionable if not n.unschedulable and n.risk >= rules.spec.thresholds.cordon),  # type: ignore[operator]  # actionable nodes have a risk
        key=lambda n: (-(n.risk or 0.0), n.name),
    )
    cordoned_now: list[NodeFacts] = []
    evict_now: set[str] = set()
    for n in candidates:
        since = plan.marks[n.name].risk_since
        if since is None or now - since < rules.spec.hysteresis.risk_for:
            continue  # hysteresis: not high for long enough yet
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
            plan.blocked.append(Blocked(n.name, CORDON, "StormBreakerTripped", storm_message(rules, plan)))
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
    return plan


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
        return Blocked(n.name, DRAIN, "StormBreakerTripped", storm_message(rules, plan))
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


def storm_message(rules: Rules, plan: Plan) -> str:
    return (
        f"{len(plan.at_risk)} selected nodes are at risk, more than stormBreaker.maxAtRisk ({rules.storm_max_at_risk}); "
        "a cluster-wide cause is likelier than that many node faults, so no node is cordoned or drained"
    )


def remediation_condition(rules: Rules, plan: Plan) -> tuple[bool, str, str]:
    if rules.spec.paused:
        return False, "Paused", "spec.paused is true: predictions continue, no node is cordoned, drained or uncordoned"
    if plan.storm:
        return False, "StormBreakerTripped", storm_message(rules, plan)
    if rules.spec.mode == "Observe":
        return False, "ObserveMode", "mode is Observe: actions are reported (would-*), never taken"
    if plan.unavailable >= rules.max_unavailable:
        return (
            False,
            "BudgetExhausted",
            (f"{plan.unavailable} selected nodes are unavailable, maxUnavailable allows {rules.max_unavailable}"),
        )
    return True, "Allowed", f"up to {rules.max_unavailable - plan.unavailable} more nodes may be cordoned"
