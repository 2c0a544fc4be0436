"""The rules beyond a drain, as pure decisions: remediation hand-off and its escalation, the
window-based and latched storm breaker, maintenance and quiet windows, and nodes another
controller is working on. The same rules on the local cluster: test_remediation_live.py."""

from __future__ import annotations

import calendar
import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ftmoe.operator import annotations as A
from ftmoe.operator.decisions import CORDON, DRAIN, END_REMEDIATION, REMEDIATE, UNCORDON, NodeFacts, Plan, Rules, decide
from ftmoe.operator.node_facts import facts
from ftmoe.operator.policy import PolicyError, PolicySpec
from ftmoe.operator.remediation_objects import parse_refs, remediation_object
from ftmoe.operator.schedule import OUTSIDE_WINDOW, QUIET_WINDOW, disruptions_allowed
from ftmoe.operator.storm_breaker import breaker_status, held_trip

NOW = float(calendar.timegm(time.strptime("2026-12-02T03:00:00Z", "%Y-%m-%dT%H:%M:%SZ")))  # a Wednesday, 03:00 UTC
SNR = {"apiVersion": "self-node-remediation.medik8s.io/v1alpha1", "namespace": "medik8s"}
TEMPLATES = [
    {**SNR, "kind": "SelfNodeRemediationTemplate", "name": "auto", "timeout": "5m"},
    {"apiVersion": "fence.example.io/v1", "kind": "FenceTemplate", "name": "ipmi", "namespace": "medik8s", "timeout": "10m"},
]


def spec(**over: Any) -> PolicySpec:
    base: dict[str, Any] = {
        "mode": "Evict",
        "prometheus": {"url": "http://p:9090"},
        "hysteresis": {"riskFor": "0s", "healthyFor": "5m"},
        "maxUnavailable": 2,
        "stormBreaker": {"maxAtRisk": "100%"},
    }
    return PolicySpec.from_dict({**base, **over})


def rules(s: PolicySpec, selected: int = 4, latched: str | None = None) -> Rules:
    return Rules.from_spec("p", s, selected, latched)


def ours(name: str = "n1", risk: float = 0.9, **kw: Any) -> NodeFacts:
    """A node this policy cordoned and drained 20 minutes ago, still at risk."""
    base: dict[str, Any] = {
        "unschedulable": True,
        "cordoned_by": "p",
        "cordoned_at": NOW - 1200,
        "risk_since": NOW - 1300,
        "drain_started": NOW - 1200,
        "drain_state": "done",
    }
    return NodeFacts(name, risk=risk, **{**base, **kw})


def acts(plan: Plan, kind: str) -> list[Any]:
    return [a for a in plan.actions if a.kind == kind]


# -- remediation hand-off ---------------------------------------------------------------------


def test_a_drained_node_still_at_risk_after_after_is_handed_to_the_first_template() -> None:
    s = spec(remediation={"after": "10m", "templates": TEMPLATES})
    plan = decide(rules(s), [ours()], NOW)
    [r] = acts(plan, REMEDIATE)
    assert (r.node, r.step, r.reason) == ("n1", 0, "RiskPersisted")
    # Not yet: cordoned 5 minutes ago; or in mode Evict while the drain is still running.
    assert not acts(decide(rules(s), [ours(cordoned_at=NOW - 300)], NOW), REMEDIATE)
    assert not acts(decide(rules(s), [ours(drain_state="draining")], NOW), REMEDIATE)
    # In mode Cordon there is no drain to wait for.
    c = spec(mode="Cordon", remediation={"after": "10m", "templates": TEMPLATES})
    assert acts(decide(rules(c), [ours(drain_state=None, drain_started=None)], NOW), REMEDIATE)


def test_the_predicted_fault_arriving_hands_over_at_once_even_without_fresh_metrics() -> None:
    s = spec(remediation={"after": "1h", "templates": TEMPLATES})
    for n in (ours(risk=None, ready=False, cordoned_at=NOW - 30), ours(fault_arrived=True, cordoned_at=NOW - 30, drain_state="draining")):
        [r] = acts(decide(rules(s), [n], NOW), REMEDIATE)
        assert r.reason == "FaultArrived" and r.step == 0


def test_escalation_follows_the_timeouts_and_gives_up_after_the_last() -> None:
    s = spec(remediation={"after": "10m", "templates": TEMPLATES})
    running = ours(remediation_step=0, remediation_started=NOW - 200)
    assert not acts(decide(rules(s), [running], NOW), REMEDIATE)  # within the 5m timeout
    [e] = acts(decide(rules(s), [ours(remediation_step=0, remediation_started=NOW - 301)], NOW), REMEDIATE)
    assert (e.step, e.reason) == (1, "RemediationEscalated") and "escalating to Fence" in e.message
    last = decide(rules(s), [ours(remediation_step=1, remediation_started=NOW - 601)], NOW)
    assert not acts(last, REMEDIATE) and [b.reason for b in last.blocked] == ["RemediationTimedOut"]
    assert not decide(rules(s), [ours(remediation_step=1, remediation_started=NOW - 601, remediation_gave_up=True)], NOW).blocked


def test_a_healthy_node_ends_its_remediation_and_is_later_uncordoned() -> None:
    s = spec(remediation={"templates": TEMPLATES[:1]})
    healed = ours(risk=0.1, remediation_step=0, remediation_started=NOW - 100, healthy_since=NOW - 400)
    plan = decide(rules(s), [healed], NOW)
    assert [a.kind for a in plan.actions] == [UNCORDON, END_REMEDIATION]
    assert acts(decide(rules(s), [ours(risk=0.1, remediation_step=0, ready=False)], NOW), END_REMEDIATION) == []


def test_storm_window_budget_and_maintenance_hold_new_remediations() -> None:
    s = spec(remediation={"templates": TEMPLATES[:1], "after": "1m"}, maxUnavailable=1)
    two = [ours("n1"), ours("n2")]
    plan = decide(rules(s), two, NOW)
    assert len(acts(plan, REMEDIATE)) == 1 and [b.reason for b in plan.blocked] == ["BudgetExhausted"]
    assert [b.reason for b in decide(rules(s, latched="earlier"), two[:1], NOW).blocked] == ["StormBreakerTripped"]
    closed = spec(remediation={"templates": TEMPLATES[:1], "after": "1m"}, schedule=[{"schedule": "0 22 * * *", "duration": "2h"}])
    assert [b.reason for b in decide(rules(closed), two[:1], NOW).blocked] == [OUTSIDE_WINDOW]
    assert not decide(rules(s), [ours(maintenance="taint medik8s.io/drain")], NOW).actions
    assert not acts(decide(rules(spec(mode="Observe", remediation={"templates": TEMPLATES[:1]})), [ours()], NOW), REMEDIATE)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.floats(0, 1), st.booleans(), st.booleans(), st.sampled_from([None, 0, 1]), st.floats(0, 2000)), min_size=1, max_size=8
    ),
    st.integers(0, 3),
)
def test_property_in_flight_remediations_never_exceed_the_budget(
    nodes: list[tuple[float, bool, bool, int | None, float]], budget: int
) -> None:
    s = spec(remediation={"after": "5m", "templates": TEMPLATES}, maxUnavailable=budget)
    facts_ = [
        ours(
            f"n{i}",
            risk=r,
            ready=ready,
            fault_arrived=fault,
            remediation_step=step,
            remediation_started=NOW - age if step is not None else None,
        )
        for i, (r, ready, fault, step, age) in enumerate(nodes)
    ]
    plan = decide(rules(s, len(facts_)), facts_, NOW)
    started = [a for a in acts(plan, REMEDIATE) if a.reason != "RemediationEscalated"]
    ended = acts(plan, END_REMEDIATION)
    in_flight = sum(1 for n in facts_ if n.remediation_step is not None)
    assert len(started) <= max(0, budget - in_flight)
    assert all(n.remediation_step is not None for n in facts_ if n.name in {a.node for a in ended})
    assert all(next(n for n in facts_ if n.name == a.node).remediation_step is None for a in started)


def test_remediation_object_follows_the_template_and_names_the_node() -> None:
    s = spec(remediation={"templates": TEMPLATES})
    assert s.remediation is not None
    ref = s.remediation.templates[0]
    template = {"spec": {"template": {"spec": {"remediationStrategy": "OutOfServiceTaint"}}}}
    policy = {"metadata": {"name": "p", "uid": "u-1"}}
    obj = remediation_object(template, ref, "node-3", policy, NOW)
    assert (obj["apiVersion"], obj["kind"]) == (SNR["apiVersion"], "SelfNodeRemediation")
    assert obj["metadata"]["name"] == "node-3" and obj["metadata"]["namespace"] == "medik8s"
    assert obj["spec"] == {"remediationStrategy": "OutOfServiceTaint"}
    assert obj["metadata"]["labels"] == {"ftmoe.io/policy": "p", "ftmoe.io/node": "node-3"}
    assert obj["metadata"]["ownerReferences"][0]["uid"] == "u-1"
    assert parse_refs(f"{SNR['apiVersion']}/SelfNodeRemediation/medik8s junk") == [(SNR["apiVersion"], "SelfNodeRemediation", "medik8s")]


@pytest.mark.parametrize(
    ("remediation", "says"),
    [
        ({"templates": []}, "templates"),
        ({"templates": [{**TEMPLATES[0], "kind": "SelfNodeRemediation"}]}, "must end in Template"),
        ({"templates": [TEMPLATES[0], {**TEMPLATES[0], "name": "other"}]}, "must not repeat a kind"),
        ({"templates": [TEMPLATES[0], {k: v for k, v in TEMPLATES[1].items() if k != "timeout"}]}, "every template needs a timeout"),
        ({"templates": [{**TEMPLATES[0], "apiVersion": "v1"}]}, "apiVersion"),
    ],
)
def test_bad_remediation_specs_are_refused_naming_the_field(remediation: dict[str, Any], says: str) -> None:
    with pytest.raises(PolicyError, match=says) as err:
        spec(remediation=remediation)
    assert "spec.remediation" in str(err.value)


# -- storm breaker ----------------------------------------------------------------------------


def test_the_window_rule_trips_when_too_many_nodes_were_cordoned_lately() -> None:
    s = spec(stormBreaker={"maxAtRisk": "100%", "maxActedOn": 2, "window": "1h"})
    history = [NodeFacts(f"old{i}", risk=0.1, cordon_history=(NOW - 600,)) for i in range(2)]
    new = NodeFacts("n9", risk=0.9, risk_since=NOW - 10)
    plan = decide(rules(s, 3), [*history, new], NOW)
    assert plan.storm and plan.trip and "maxActedOn (2)" in plan.trip
    assert [b.reason for b in plan.blocked] == ["StormBreakerTripped"] and not acts(plan, CORDON)
    aged = [NodeFacts(f"old{i}", risk=0.1, cordon_history=(NOW - 4000,)) for i in range(2)]
    assert acts(decide(rules(s, 3), [*aged, new], NOW), CORDON)  # the old cordons left the window


def test_a_latched_breaker_holds_after_the_storm_until_a_reset() -> None:
    s = spec(stormBreaker={"maxAtRisk": 1, "latch": True})
    storm = [NodeFacts(f"n{i}", risk=0.9, risk_since=NOW - 10) for i in range(3)]
    plan = decide(rules(s), storm, NOW)
    status, latched_now = breaker_status({}, held_trip({}, {}, True), plan, True, NOW)
    assert latched_now and status["open"] and status["latched"] and "maxAtRisk" in status["reason"]
    # The storm passes: one node at risk. The latch holds the breaker open.
    held = held_trip(status, {}, True)
    calm = decide(rules(s, latched=held.latched), storm[:1], NOW + 60)
    assert calm.storm and calm.trip is None and not acts(calm, CORDON) and calm.remediation[1] == "StormBreakerLatched"
    assert "kubectl ftmoe reset p" in calm.storm_message
    status2, again = breaker_status(status, held, calm, True, NOW + 60)
    assert status2["latched"] and status2["since"] == status["since"] and not again
    # A human resets it: a new annotation value clears the latch once.
    reset = held_trip(status2, {A.RESET_STORM_BREAKER: "2026-12-02T03:05:00Z"}, True)
    assert reset.was_reset and reset.latched is None
    after = decide(rules(s, latched=reset.latched), storm[:1], NOW + 120)
    assert acts(after, CORDON)
    status3, _ = breaker_status(status2, reset, after, True, NOW + 120)
    assert status3 == {"open": False, "latched": False, "resetSeen": "2026-12-02T03:05:00Z"}
    assert not held_trip(status3, {A.RESET_STORM_BREAKER: "2026-12-02T03:05:00Z"}, True).was_reset  # the same value again: nothing
    # Without latch the breaker closes by itself.
    unlatched = spec(stormBreaker={"maxAtRisk": 1})
    assert not decide(rules(unlatched, latched=held_trip(status, {}, False).latched), storm[:1], NOW + 60).storm


# -- schedule and maintenance -----------------------------------------------------------------


def test_maintenance_and_quiet_windows() -> None:
    night = [{"schedule": "0 2 * * *", "duration": "2h"}]  # 02:00-04:00 UTC; NOW is 03:00
    assert disruptions_allowed(spec(schedule=night).schedule, NOW)[0]
    assert disruptions_allowed(spec(schedule=night).schedule, NOW + 3600)[1] == OUTSIDE_WINDOW
    berlin = [{"schedule": "0 2 * * *", "duration": "2h", "timeZone": "Europe/Berlin"}]  # 01:00-03:00 UTC in winter
    assert disruptions_allowed(spec(schedule=berlin).schedule, NOW)[1] == OUTSIDE_WINDOW
    quiet = [*night, {"schedule": "30 2 * * wed", "duration": "1h", "disruptions": "Forbidden"}]
    assert disruptions_allowed(spec(schedule=quiet).schedule, NOW)[1] == QUIET_WINDOW
    assert disruptions_allowed(spec(schedule=quiet).schedule, NOW - 86400)[0]  # Tuesday: no quiet window
    # At the opening minute itself the window is open.
    assert disruptions_allowed(spec(schedule=[{"schedule": "0 3 * * *", "duration": "1m"}]).schedule, NOW)[0]


def test_a_closed_window_holds_new_cordons_and_drains_but_not_uncordons() -> None:
    s = spec(schedule=[{"schedule": "0 22 * * *", "duration": "1h"}])
    new = NodeFacts("n1", risk=0.9, risk_since=NOW - 100)
    healed = NodeFacts("n2", risk=0.1, unschedulable=True, cordoned_by="p", healthy_since=NOW - 400)
    draining = NodeFacts("n3", risk=0.9, unschedulable=True, cordoned_by="p", drain_started=NOW - 30, drain_state="draining")
    plan = decide(rules(s), [new, healed, draining], NOW)
    assert [(a.node, a.kind) for a in plan.actions] == [("n2", UNCORDON), ("n3", DRAIN)]  # a drain under way finishes
    assert [(b.node, b.reason) for b in plan.blocked] == [("n1", OUTSIDE_WINDOW)]
    assert plan.remediation[:2] == (False, OUTSIDE_WINDOW)


def test_a_node_in_another_controllers_maintenance_is_left_alone() -> None:
    s = spec()
    node = {
        "metadata": {"name": "n1", "labels": {}, "annotations": {}},
        "spec": {"taints": [{"key": "medik8s.io/drain", "effect": "NoSchedule"}]},
        "status": {"conditions": [{"type": "Ready", "status": "True"}]},
    }
    f = facts(node, 0.95, s)
    assert f.maintenance == "taint medik8s.io/drain"
    plan = decide(rules(s), [NodeFacts("n1", risk=0.95, risk_since=NOW - 100, maintenance=f.maintenance)], NOW)
    assert not plan.actions and [b.reason for b in plan.blocked] == ["InMaintenance"]
    labelled = {**node, "spec": {}, "metadata": {"name": "n1", "labels": {"ftmoe.io/maintenance": ""}}}
    assert facts(labelled, 0.95, s).maintenance == "label ftmoe.io/maintenance"
    assert facts({**node, "spec": {}}, 0.95, s).maintenance is None


@pytest.mark.parametrize(
    ("window", "says"),
    [
        ({"schedule": "99 * * * *", "duration": "1h"}, "not a cron schedule"),
        ({"schedule": "0 2 * * *", "duration": "1h", "timeZone": "Mars/Olympus"}, "not an IANA time zone"),
        ({"schedule": "0 2 * * *"}, "duration"),
    ],
)
def test_bad_windows_are_refused_naming_the_field(window: dict[str, Any], says: str) -> None:
    with pytest.raises(PolicyError, match=says) as err:
        spec(schedule=[window])
    assert "spec.schedule[0]" in str(err.value)


def test_a_node_a_human_took_over_is_not_escalated_but_its_objects_still_go_when_healthy() -> None:
    s = spec(remediation={"templates": TEMPLATES})
    human = ours(cordoned_by=None, remediation_step=0, remediation_started=NOW - 1000)  # past the 5m timeout
    assert not decide(rules(s), [human], NOW).actions
    healed = ours(cordoned_by=None, unschedulable=False, risk=0.1, remediation_step=0, remediation_started=NOW - 1000)
    assert [a.kind for a in decide(rules(s), [healed], NOW).actions] == [END_REMEDIATION]
