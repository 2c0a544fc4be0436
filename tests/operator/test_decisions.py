"""The decision function: worked cases, then properties over random clusters (hypothesis)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from ftmoe.operator.api.policy_types import DrainSpec, Escalation, Hysteresis, Mode, PolicySpec, PrometheusSpec, Thresholds
from ftmoe.operator.costs import ANNOTATE, CostWeights, NodeLoad
from ftmoe.operator.decisions import CORDON, DRAIN, FORCE_DRAIN, UNCORDON, Marks, NodeFacts, Rules, decide, usable
from ftmoe.operator.decisions_types import Action, Blocked, Plan

NOW = 1_000_000.0
POLICY = "p"


def rules(
    *,
    mode: Mode = "Evict",
    paused: bool = False,
    max_unavailable: int = 2,
    storm_max_at_risk: int = 4,
    risk_for: float = 60,
    healthy_for: float = 300,
    drain_timeout: float = 600,
    force: bool = False,
    max_cordons: int = 3,
    costs: CostWeights | None = None,
) -> Rules:
    """Rules over a typed spec, as the operator builds them, with the counts already resolved."""
    spec = PolicySpec(
        prometheus=PrometheusSpec(url="http://p"),
        mode=mode,
        paused=paused,
        thresholds=Thresholds(annotate=0.3, cordon=0.6, evict=0.8),
        hysteresis=Hysteresis(risk_for=risk_for, healthy_for=healthy_for),
        drain=DrainSpec(timeout=drain_timeout, force=force),
        escalation=Escalation(max_cordons_per_node=max_cordons),
        cost_model=costs,
    )
    return Rules(POLICY, spec, max_unavailable, storm_max_at_risk)


def kinds(plan, node: str | None = None) -> list[str]:  # type: ignore[no-untyped-def]
    return [a.kind for a in plan.actions if node is None or a.node == node]


def test_cordon_waits_for_risk_for_then_cordons_and_drains_above_evict() -> None:
    fresh = NodeFacts("n1", risk=0.9)
    plan = decide(rules(), [fresh], NOW)
    assert kinds(plan) == []  # risk just went up: the clock starts now
    assert plan.marks["n1"].risk_since == NOW
    held = NodeFacts("n1", risk=0.9, risk_since=NOW - 61)
    plan = decide(rules(), [held], NOW)
    assert kinds(plan) == [CORDON, DRAIN]
    assert plan.actions[0].reason == "RiskAboveThreshold"


def test_cordon_without_drain_between_cordon_and_evict_thresholds() -> None:
    plan = decide(rules(), [NodeFacts("n1", risk=0.7, risk_since=NOW - 100)], NOW)
    assert kinds(plan) == [CORDON]


def test_budget_counts_notready_and_foreign_cordons() -> None:
    nodes = [
        NodeFacts("down", risk=0.1, ready=False),
        NodeFacts("manual", risk=0.1, unschedulable=True),
        NodeFacts("hot", risk=0.95, risk_since=NOW - 100),
    ]
    plan = decide(rules(max_unavailable=2), nodes, NOW)
    assert kinds(plan) == []
    assert [(b.node, b.reason) for b in plan.blocked] == [("hot", "BudgetExhausted")]
    assert plan.remediation[:2] == (False, "BudgetExhausted")


def test_budget_takes_the_riskiest_first() -> None:
    nodes = [NodeFacts(f"n{i}", risk=r, risk_since=NOW - 100) for i, r in enumerate([0.65, 0.99, 0.7])]
    plan = decide(rules(max_unavailable=1, mode="Cordon"), nodes, NOW)
    assert [a.node for a in plan.actions] == ["n1"]
    assert {b.node for b in plan.blocked} == {"n0", "n2"}


def test_storm_breaker_trips_and_says_so() -> None:
    nodes = [NodeFacts(f"n{i}", risk=0.9, risk_since=NOW - 100) for i in range(5)]
    plan = decide(rules(storm_max_at_risk=4, max_unavailable=5), nodes, NOW)
    assert plan.storm and kinds(plan) == []
    assert {b.reason for b in plan.blocked} == {"StormBreakerTripped"}
    assert plan.remediation[1] == "StormBreakerTripped" and "5 selected nodes" in plan.remediation[2]


def test_uncordon_after_healthy_for_and_only_our_own() -> None:
    ours = NodeFacts("ours", risk=0.1, unschedulable=True, cordoned_by=POLICY, healthy_since=NOW - 301)
    other = NodeFacts("other", risk=0.1, unschedulable=True, cordoned_by="someone-else", healthy_since=NOW - 10_000)
    manual = NodeFacts("manual", risk=0.1, unschedulable=True, healthy_since=NOW - 10_000)
    young = NodeFacts("young", risk=0.1, unschedulable=True, cordoned_by=POLICY, healthy_since=NOW - 100)
    plan = decide(rules(), [ours, other, manual, young], NOW)
    assert [(a.node, a.kind) for a in plan.actions] == [("ours", UNCORDON)]


def test_pressure_or_notready_resets_the_healthy_clock() -> None:
    n = NodeFacts("n", risk=0.1, unschedulable=True, cordoned_by=POLICY, healthy_since=NOW - 1000, pressure=True)
    plan = decide(rules(), [n], NOW)
    assert plan.marks["n"].healthy_since is None and kinds(plan) == []


def test_stale_data_stops_both_clocks_and_every_action() -> None:
    n = NodeFacts("n", risk=None, risk_since=NOW - 1000, healthy_since=NOW - 1000, cordon_history=())
    plan = decide(rules(), [n], NOW)
    assert kinds(plan) == [] and (plan.marks["n"].risk_since, plan.marks["n"].healthy_since) == (None, None)


def test_a_data_gap_restarts_healthy_for_so_one_healthy_sample_never_uncordons() -> None:
    """The 77 s Prometheus outage: healthy before it, one healthy sample after it."""
    cordoned = dict(unschedulable=True, cordoned_by=POLICY)
    before = decide(rules(), [NodeFacts("n", risk=0.1, healthy_since=NOW - 310, **cordoned)], NOW - 100)  # type: ignore[arg-type]
    assert before.marks["n"].healthy_since == NOW - 310 and kinds(before) == []
    gap = decide(rules(), [NodeFacts("n", risk=None, healthy_since=NOW - 310, **cordoned)], NOW - 50)  # type: ignore[arg-type]
    assert gap.marks["n"].healthy_since is None
    after = decide(rules(), [NodeFacts("n", risk=0.1, healthy_since=gap.marks["n"].healthy_since, **cordoned)], NOW)  # type: ignore[arg-type]
    assert kinds(after) == [] and after.marks["n"].healthy_since == NOW, "healthyFor counts from the first fresh sample"


def test_two_high_samples_around_a_gap_do_not_meet_risk_for() -> None:
    first = decide(rules(), [NodeFacts("n", risk=0.9)], NOW - 70)
    gap = decide(rules(), [NodeFacts("n", risk=None, risk_since=first.marks["n"].risk_since)], NOW - 35)
    second = decide(rules(), [NodeFacts("n", risk=0.9, risk_since=gap.marks["n"].risk_since)], NOW)
    assert kinds(second) == [] and second.marks["n"].risk_since == NOW


def test_a_nan_risk_is_no_data_not_health() -> None:
    nan = float("nan")
    ours = NodeFacts("n", risk=nan, unschedulable=True, cordoned_by=POLICY, healthy_since=NOW - 10_000)
    hot = NodeFacts("h", risk=nan, risk_since=NOW - 10_000)
    plan = decide(rules(), [ours, hot], NOW)
    assert kinds(plan) == [] and plan.at_risk == []
    assert plan.marks["n"] == plan.marks["h"] == Marks(None, None)
    assert kinds(decide(rules(), [NodeFacts("x", risk=1.7, risk_since=NOW - 100)], NOW)) == [], "a risk outside [0, 1] is no risk"


def test_drain_timeout_blocks_unless_force() -> None:
    n = NodeFacts("n", risk=0.9, unschedulable=True, cordoned_by=POLICY, drain_started=NOW - 700, drain_state="draining")
    plan = decide(rules(), [n], NOW)
    assert kinds(plan) == [] and plan.blocked[0].reason == "DrainTimedOut"
    plan = decide(rules(force=True), [n], NOW)
    assert kinds(plan) == [FORCE_DRAIN]


def test_escalation_stops_repeat_cordons() -> None:
    n = NodeFacts("n", risk=0.9, risk_since=NOW - 100, cordon_history=(NOW - 3000, NOW - 2000, NOW - 1000))
    plan = decide(rules(max_cordons=3), [n], NOW)
    assert kinds(plan) == [] and plan.blocked[0].reason == "Escalated"
    old = NodeFacts("n", risk=0.9, risk_since=NOW - 100, cordon_history=(NOW - 200_000,) * 3)
    assert kinds(decide(rules(max_cordons=3), [old], NOW)) == [CORDON, DRAIN]


def test_observe_mode_reports_dry_runs() -> None:
    plan = decide(rules(mode="Observe"), [NodeFacts("n", risk=0.95, risk_since=NOW - 100)], NOW)
    assert kinds(plan) == [CORDON] and all(a.dry_run for a in plan.actions)
    assert plan.remediation[1] == "ObserveMode"


# -- properties ------------------------------------------------------------------------------

maybe_time = st.one_of(st.none(), st.floats(min_value=NOW - 5000, max_value=NOW))
node_facts = st.builds(
    NodeFacts,
    name=st.sampled_from([f"n{i}" for i in range(12)]),
    risk=st.one_of(st.none(), st.floats(min_value=0, max_value=1), st.just(float("nan")), st.sampled_from([-0.5, 1.5, float("inf")])),
    ready=st.booleans(),
    unschedulable=st.booleans(),
    cordoned_by=st.sampled_from([None, POLICY, "other"]),
    excluded=st.booleans(),
    pressure=st.booleans(),
    risk_since=maybe_time,
    healthy_since=maybe_time,
    drain_started=maybe_time,
    drain_state=st.sampled_from([None, "draining", "done", "timed-out"]),
    cordon_history=st.lists(st.floats(min_value=NOW - 200_000, max_value=NOW), max_size=4).map(tuple),
    load=st.builds(
        NodeLoad,
        pods=st.integers(0, 30),
        training_pods=st.integers(0, 2),
        cpu_requests=st.floats(0, 16),
        cores=st.sampled_from([2.0, 4.0, 8.0]),
        work_at_risk=st.floats(0, 7200),
        checkpoint_cost=st.floats(0, 300),
        expected_arrivals=st.floats(0, 5),
        free_cores_elsewhere=st.floats(0, 64),
    ),
)
clusters = st.lists(node_facts, max_size=12, unique_by=lambda n: n.name)
rule_sets = st.builds(
    rules,
    mode=st.sampled_from(["Observe", "Cordon", "Evict"]),
    paused=st.booleans(),
    max_unavailable=st.integers(0, 6),
    storm_max_at_risk=st.integers(0, 12),
    risk_for=st.sampled_from([0.0, 60.0, 600.0]),
    healthy_for=st.sampled_from([0.0, 300.0]),
    force=st.booleans(),
    max_cordons=st.integers(1, 4),
    costs=st.one_of(
        st.none(),
        st.builds(
            CostWeights,
            resource=st.floats(0, 3),
            impact=st.floats(0, 3),
            restart_seconds=st.floats(0, 600),
            fault_seconds=st.floats(0, 3600),
            capacity_seconds=st.floats(0, 600),
        ),
    ),
)


@settings(max_examples=400, deadline=None)
@given(rule_sets, clusters)
def test_safety_properties(r: Rules, nodes: list[NodeFacts]) -> None:
    plan = decide(r, nodes, NOW)
    by_name = {n.name: n for n in nodes}
    for n in nodes:  # for_node reads an index: it must agree with a scan of the plan
        assert plan.for_node(n.name) == ([a for a in plan.actions if a.node == n.name], [b for b in plan.blocked if b.node == n.name])
    real = [a for a in plan.actions if not a.dry_run]
    unavailable = sum(1 for n in nodes if not n.ready or n.unschedulable)
    cordons = [a for a in real if a.kind == CORDON]
    # The budget: new cordons never take the unavailable count over maxUnavailable.
    assert len(cordons) <= max(0, r.max_unavailable - unavailable)
    if r.spec.paused:
        assert plan.actions == [] and plan.blocked == []
    if r.spec.mode == "Observe":
        assert real == []
    if plan.storm:
        assert not [a for a in plan.actions if a.kind in (CORDON, DRAIN, FORCE_DRAIN)]
    assert plan.storm == (sum(1 for n in nodes if usable(n.risk) and n.risk >= r.spec.thresholds.cordon) > r.storm_max_at_risk)
    for a in plan.actions:
        n = by_name[a.node]
        assert not n.excluded and usable(n.risk), "never on excluded nodes, stale data or an unusable risk"
        if a.kind == CORDON:
            assert n.risk >= r.spec.thresholds.cordon and not n.unschedulable
            since = plan.marks[n.name].risk_since
            assert since is not None and NOW - since >= r.spec.hysteresis.risk_for
        if a.kind == UNCORDON:
            assert n.cordoned_by == POLICY and n.unschedulable
            since = plan.marks[n.name].healthy_since
            assert since is not None and NOW - since >= r.spec.hysteresis.healthy_for
            assert n.ready and not n.pressure and n.risk < r.spec.thresholds.cordon
        if a.kind in (DRAIN, FORCE_DRAIN):
            assert r.spec.mode == "Evict"
            assert n.cordoned_by == POLICY or any(c.node == n.name and c.kind == CORDON for c in plan.actions)
            if a.kind == FORCE_DRAIN:
                assert r.spec.drain.force
    # The cost model never picks an action it rates costlier than doing nothing, and when
    # doing nothing is cheapest, nothing is done.
    if r.spec.cost_model is not None:
        for name, (chosen, options) in plan.costs.items():
            annotate = next(o for o in options if o.action == ANNOTATE)
            assert chosen.total <= annotate.total
            if chosen.action == ANNOTATE:
                assert not [a for a in plan.actions if a.node == name and a.kind in (CORDON, DRAIN)]
        for a in plan.actions:
            if a.kind == CORDON:
                assert a.node in plan.costs and plan.costs[a.node][0].action != ANNOTATE
    # Each node gets at most one action of each kind, and never a cordon and an uncordon.
    for name in by_name:
        ks = kinds(plan, name)
        assert len(ks) == len(set(ks)) and not (CORDON in ks and UNCORDON in ks)


@settings(max_examples=200, deadline=None)
@given(rule_sets, clusters)
def test_hysteresis_clocks(r: Rules, nodes: list[NodeFacts]) -> None:
    plan = decide(r, nodes, NOW)
    for n in nodes:
        m = plan.marks[n.name]
        if not usable(n.risk):
            assert (m.risk_since, m.healthy_since) == (None, None), "only fresh observations count"
        elif n.risk >= r.spec.thresholds.cordon:
            assert m.healthy_since is None and m.risk_since == (n.risk_since if n.risk_since is not None else NOW)
        else:
            assert m.risk_since is None
            assert (m.healthy_since is None) == (not n.ready or n.pressure or n.cordoned_by != r.policy)


def test_for_node_sees_an_action_added_after_it_was_first_asked() -> None:
    plan = Plan(actions=[Action("a", CORDON, "RiskAboveThreshold", "m")])
    assert [x.node for x in plan.for_node("a")[0]] == ["a"] and plan.for_node("b") == ([], [])
    plan.blocked.append(Blocked("b", CORDON, "BudgetExhausted", "m"))
    plan.actions.append(Action("a", DRAIN, "RiskAboveEvict", "m"))
    assert [x.kind for x in plan.for_node("a")[0]] == [CORDON, DRAIN] and [x.reason for x in plan.for_node("b")[1]] == ["BudgetExhausted"]
    plan.for_node("a")[0].clear()  # a caller's list is its own
    assert len(plan.for_node("a")[0]) == 2


def test_cost_model_evicts_a_busy_risky_node_and_leaves_an_empty_one() -> None:
    w = CostWeights(restart_seconds=30, fault_seconds=600)
    busy = NodeFacts("busy", risk=0.9, risk_since=NOW - 100, load=NodeLoad(pods=10, cpu_requests=2, cores=4))
    empty = NodeFacts("empty", risk=0.9, risk_since=NOW - 100, load=NodeLoad(pods=0, cores=4, expected_arrivals=0))
    plan = decide(rules(costs=w, max_unavailable=2), [busy, empty], NOW)
    assert [(a.node, a.kind) for a in plan.actions] == [("busy", CORDON), ("busy", DRAIN)]
    assert plan.costs["busy"][0].action == "evict" and "L=300" in plan.actions[0].message
    assert plan.costs["empty"][0].action == ANNOTATE
    # with nowhere to put the pods, eviction is off the table; cordon keeps new pods away
    full = NodeFacts(
        "full", risk=0.9, risk_since=NOW - 100, load=NodeLoad(pods=10, cpu_requests=8, cores=8, free_cores_elsewhere=1, expected_arrivals=2)
    )
    plan = decide(rules(costs=w), [full], NOW)
    assert [(a.node, a.kind) for a in plan.actions] == [("full", CORDON)]


def test_cost_model_prefers_checkpoint_then_evict_for_training_pods() -> None:
    from ftmoe.operator.costs import choose

    load = NodeLoad(pods=2, training_pods=2, cpu_requests=2, cores=8, work_at_risk=3000, checkpoint_cost=60)
    chosen, options = choose(0.8, load, CostWeights(), ("annotate", "cordon", "evict", "checkpoint-then-evict"))
    assert chosen.action == "checkpoint-then-evict"
    evict = next(o for o in options if o.action == "evict")
    restart = CostWeights().restart_seconds
    assert evict.resource_cost == 2 * restart + 2 * 3000  # evicting without a checkpoint throws the work away


def test_a_small_pool_with_default_settings_can_cordon() -> None:
    """Before: 30% of 3 nodes rounded to 0, so one node at risk tripped the storm breaker, silently."""
    spec = PolicySpec.from_dict({"prometheus": {"url": "http://p"}, "mode": "Cordon", "hysteresis": {"riskFor": "0s"}})
    r = Rules.from_spec(POLICY, spec, 3)
    assert r.storm_max_at_risk == 1 and r.max_unavailable == 1
    plan = decide(r, [NodeFacts("a", risk=0.9, risk_since=NOW), NodeFacts("b", risk=0.1), NodeFacts("c", risk=0.1)], NOW)
    assert not plan.storm and kinds(plan) == [CORDON]
    two = decide(r, [NodeFacts("a", risk=0.9), NodeFacts("b", risk=0.9), NodeFacts("c", risk=0.1)], NOW)
    assert two.storm, "two of three nodes at once still looks like a cluster-wide cause"
    zero = Rules.from_spec(POLICY, PolicySpec.from_dict({"prometheus": {"url": "http://p"}, "stormBreaker": {"maxAtRisk": "0%"}}), 3)
    assert zero.storm_max_at_risk == 0, "0% means what it says"
