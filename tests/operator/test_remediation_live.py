"""Beyond a drain, on the local cluster: remediation hand-off to a (stand-in) remediator with
escalation and clean-up, the latched storm breaker and its reset, quiet windows, another
controller's maintenance, and the sweep of a node the policy let go. The same rules as
pure decisions: test_disruption_rules.py."""

from __future__ import annotations

import functools
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException
from live_cluster import Env, apply_policy, delete_policy, env, inject, kubectl_ftmoe, own_metric, side_by_side, wait_for

pytestmark = pytest.mark.cluster
__all__ = ["env"]  # the fixture, imported so that pytest finds it here

GROUP, VERSION, NS = "remediation.test.ftmoe.io", "v1alpha1", "remediators"
STAND_IN = Path(__file__).with_name("remediation_stand_in.yaml")


@pytest.fixture(scope="module")
def stand_in(env: Env) -> str:
    """The stand-in remediator's CRDs, templates and RBAC (an admin's ClusterRole for it)."""
    env.kubectl("apply", "-f", str(STAND_IN))
    for crd in ("standinreboottemplates", "standinreboots", "standinfencetemplates", "standinfences"):
        env.kubectl("wait", "--for=condition=Established", f"crd/{crd}.{GROUP}", "--timeout=60s")
    env.kubectl("create", "namespace", NS, check=False)
    for kind, strategy in (("StandInRebootTemplate", "reboot"), ("StandInFenceTemplate", "ipmi")):
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": kind,
            "metadata": {"name": "default", "namespace": NS},
            "spec": {"template": {"spec": {"strategy": strategy}}},
        }
        wait_for(lambda b=body: apply_object(env, b), 30, f"the {kind} created")  # discovery catches up with a new CRD
    return NS


def apply_object(env: Env, body: dict[str, Any]) -> bool:
    import json

    return env.kubectl("apply", "-f", "-", input=json.dumps(body), check=False).returncode == 0


def remediation(env: Env, plural: str, node: str) -> dict[str, Any] | None:
    try:
        return env.custom.get_namespaced_custom_object(GROUP, VERSION, NS, plural, node)  # type: ignore[no-any-return]
    except ApiException as err:
        if err.status == 404:
            return None
        raise


def template(kind: str, timeout: str) -> dict[str, str]:
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": kind, "name": "default", "namespace": NS, "timeout": timeout}


def condition(env: Env, policy: str, kind: str) -> dict[str, Any]:
    return next((c for c in env.policy(policy)["status"].get("conditions") or [] if c["type"] == kind), {})


def annotations(env: Env, node: str) -> dict[str, str]:
    return env.node(node).metadata.annotations or {}


def test_hand_off_latched_breaker_and_windows_side_by_side(env: Env, stand_in: str) -> None:
    """Four scenarios on disjoint nodes at once (live_cluster.side_by_side)."""
    side_by_side(
        {
            f.__name__: functools.partial(f, env)
            for f in (
                hand_off_escalation_and_clean_up,
                latched_breaker_and_reset,
                windows_maintenance_and_sweep,
                dashboard_queries_return_data,
            )
        }
    )


DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "helm" / "ftmoe-operator" / "files" / "dashboard.json"


def dashboard_queries_return_data(env: Env) -> None:
    """While the other scenarios run, the local Prometheus (scraping the operator as job
    ftmoe-operator) comes to hold every series the dashboard draws; Grafana's variables get
    the values it would give them."""
    import urllib.parse
    import urllib.request

    panels = json.loads(DASHBOARD.read_text())["panels"]
    exprs = {f"{p['title']}: {t['expr']}": t["expr"] for p in panels for t in p["targets"]}
    assert len(exprs) >= 10

    def has_data(expr: str) -> bool:
        query = expr.replace("$__rate_interval", "10m").replace("$policy", ".*")
        with urllib.request.urlopen(f"{env.prometheus}/api/v1/query?{urllib.parse.urlencode({'query': query})}", timeout=10) as resp:
            body = json.load(resp)
        assert body["status"] == "success", body
        return bool(body["data"]["result"])

    seen: set[str] = set()

    def all_seen() -> bool:
        seen.update(k for k, e in exprs.items() if k not in seen and has_data(e))
        return seen == set(exprs)

    try:
        wait_for(all_seen, 150, "data for every dashboard query", every=5)
    except AssertionError:
        raise AssertionError(f"dashboard queries that never returned data: {sorted(set(exprs) - seen)}") from None


def hand_off_escalation_and_clean_up(env: Env) -> None:
    """A node whose fault arrives is handed to the reboot template, escalated to the fence
    when the reboot's timeout passes, and both objects go once the node is healthy."""
    policy = apply_policy(
        env,
        ["node-0", "node-1"],
        mode="Cordon",
        remediation={"after": "10s", "templates": [template("StandInRebootTemplate", "15s"), template("StandInFenceTemplate", "1h")]},
    )
    try:
        inject("node-0", duration=11)
        reboot = wait_for(lambda: remediation(env, "standinreboots", "node-0"), 150, "a StandInReboot for node-0")
        assert env.node("node-0").spec.unschedulable, "handed over only once cordoned"
        meta = reboot["metadata"]
        assert reboot["spec"] == {"strategy": "reboot"}, "the template's spec.template.spec"
        assert meta["labels"] == {"ftmoe.io/policy": policy, "ftmoe.io/node": "node-0"}
        assert meta["ownerReferences"][0]["kind"] == "FaultTolerancePolicy" and meta["ownerReferences"][0]["name"] == policy
        # The object is created first and the node marked after it: wait for the mark.
        wait_for(lambda: annotations(env, "node-0").get("ftmoe.io/remediation-step") == "0", 10, "node-0 marked at remediation step 0")
        # The reboot's 15s timeout passes with the node still faulty: the fence is next, the reboot marked.
        fence = wait_for(lambda: remediation(env, "standinfences", "node-0"), 60, "escalation to a StandInFence")
        assert fence["spec"] == {"strategy": "ipmi"}
        wait_for(  # marked just after the fence is created
            lambda: (
                "ftmoe.io/remediation-timed-out"
                in ((remediation(env, "standinreboots", "node-0") or {})["metadata"].get("annotations") or {})
            ),
            10,
            "the timed-out reboot marked",
        )
        assert wait_for(lambda: env.policy(policy)["status"].get("remediatingNodes") == 1, 30, "status.remediatingNodes 1")
        # The event follows the object's creation and the node's marks: wait for it, do not race it.
        wait_for(
            lambda: env.node_events("node-0", "RemediationCreated") and env.node_events("node-0", "RemediationEscalated"), 30, "events"
        )
        # What an admin asks: kubectl ftmoe why, and status as data.
        why = kubectl_ftmoe(env, "why", "node-0").stdout
        assert "cordoned by " + policy in why and "remediation: step 1" in why and "StandInFence" in why, why
        mine = next(p for p in json.loads(kubectl_ftmoe(env, "status", "-o", "json").stdout)["policies"] if p["name"] == policy)
        assert mine["remediating"] == 1 and mine["cordoned"] == 1, mine
        # The fault ends: both objects go, then healthyFor later the cordon.
        wait_for(
            lambda: remediation(env, "standinreboots", "node-0") is None and remediation(env, "standinfences", "node-0") is None,
            180,
            "both remediation objects deleted once node-0 is healthy",
        )
        wait_for(
            lambda: (
                not any(k.startswith("ftmoe.io/remediation") for k in annotations(env, "node-0"))
                and env.node_events("node-0", "RemediationEnded")
            ),
            30,
            "node-0's remediation marks removed and RemediationEnded posted (they follow the deletions)",
        )
        wait_for(lambda: not env.node("node-0").spec.unschedulable, 90, "node-0 uncordoned")
        assert remediation(env, "standinreboots", "node-1") is None, "only the faulty node was handed over"
        assert "precision" in kubectl_ftmoe(env, "report", policy).stdout
        assert own_metric("ftmoe_alarm_to_action_seconds_count", policy=policy, step="cordon") == 1
        assert own_metric("ftmoe_alarm_to_action_seconds_count", policy=policy, step="remediation") == 1
        assert own_metric("ftmoe_remediations_in_flight", policy=policy) == 0
    finally:
        delete_policy(env, policy)


def latched_breaker_and_reset(env: Env) -> None:
    """A latched storm breaker stays open after the storm until a human resets it."""
    nodes = ["node-2", "node-3", "node-4", "node-5"]
    policy = apply_policy(
        env,
        nodes,
        mode="Cordon",
        maxUnavailable=2,
        hysteresis={"riskFor": "20s", "healthyFor": "20s"},
        stormBreaker={"maxAtRisk": 1, "latch": True},
    )
    try:
        inject("node-2", duration=6)
        inject("node-3", duration=6)
        wait_for(lambda: (env.policy(policy)["status"].get("stormBreaker") or {}).get("latched"), 150, "the breaker latched")
        wait_for(lambda: env.policy_events(policy, "StormBreakerLatched"), 30, "a StormBreakerLatched event")
        wait_for(lambda: env.policy(policy)["status"]["atRiskNodes"] == 0, 150, "the storm over")
        status = env.policy(policy)["status"]
        assert status["stormBreaker"]["open"] and status["stormBreaker"]["latched"], status["stormBreaker"]
        conditions = {c["type"]: c for c in status["conditions"]}
        assert conditions["RemediationAllowed"]["reason"] == "StormBreakerLatched"
        assert "kubectl ftmoe reset" in conditions["RemediationAllowed"]["message"]
        # One node at risk now is no storm, but the latch holds.
        inject("node-4", duration=14)
        wait_for(
            lambda: "StormBreakerTripped" in annotations(env, "node-4").get("ftmoe.io/decision", ""),
            150,
            "node-4's cordon held by the latched breaker",
        )
        assert not any(env.node(n).spec.unschedulable for n in nodes)
        status = kubectl_ftmoe(env, "status").stdout
        assert any(line.startswith(policy) and "latched" in line for line in status.splitlines()), status
        reset_at = datetime.now(timezone.utc).replace(microsecond=0)
        reset = kubectl_ftmoe(env, "reset", policy).stdout
        assert "the breaker was latched" in reset, reset
        wait_for(lambda: env.node("node-4").spec.unschedulable, 90, "node-4 cordoned once the breaker was reset")
        breaker = env.policy(policy)["status"]["stormBreaker"]
        assert breaker["resetSeen"], breaker
        wait_for(lambda: env.policy_events(policy, "StormBreakerReset"), 30, "a StormBreakerReset event")
        # The reset cleared the old latch (node-4 could not be cordoned otherwise). A second storm
        # after the reset (node-4 and a neighbour at risk together) latches anew, which is right;
        # what must never show is the old trip still held.
        if breaker["latched"]:
            since = datetime.fromisoformat(breaker["since"].replace("Z", "+00:00"))
            assert since >= reset_at, f"the latch from before the reset is still held: {breaker}"
    finally:
        delete_policy(env, policy)


def windows_maintenance_and_sweep(env: Env) -> None:
    """A quiet window and another controller's maintenance hold cordons; a node the policy
    lets go has its annotations and labels swept."""
    nodes = ["node-6", "node-7"]
    quiet = [{"schedule": "* * * * *", "duration": "1h", "disruptions": "Forbidden"}]
    policy = apply_policy(env, nodes, mode="Cordon", schedule=quiet)
    env.core.patch_node("node-7", {"metadata": {"labels": {"ftmoe.io/maintenance": "node-maintenance-operator"}}})
    try:
        inject("node-6", duration=20)
        inject("node-7", duration=20)

        def decision(node: str) -> str:
            return annotations(env, node).get("ftmoe.io/decision", "")

        wait_for(lambda: "QuietWindow" in decision("node-6") and "InMaintenance" in decision("node-7"), 150, "both cordons held")
        assert condition(env, policy, "RemediationAllowed")["reason"] == "QuietWindow"
        kubectl_ftmoe(env, "pause", policy)
        env.custom.patch_cluster_custom_object("ftmoe.io", "v1alpha1", "faulttolerancepolicies", policy, {"spec": {"schedule": None}})
        wait_for(lambda: condition(env, policy, "RemediationAllowed").get("reason") == "Paused", 30, "the pause seen")
        assert not env.node("node-6").spec.unschedulable, "paused: no cordon, window or not"
        assert "resumed" in kubectl_ftmoe(env, "resume", policy).stdout
        wait_for(lambda: env.node("node-6").spec.unschedulable, 90, "node-6 cordoned once resumed and the quiet window gone")
        assert not env.node("node-7").spec.unschedulable, "a node in maintenance is left alone"
        # node-7 leaves the selector: what the policy wrote on it is swept.
        selector = {"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In", "values": ["node-6"]}]}
        env.custom.patch_cluster_custom_object(
            "ftmoe.io", "v1alpha1", "faulttolerancepolicies", policy, {"spec": {"nodeSelector": selector}}
        )
        wait_for(
            lambda: not any(k in annotations(env, "node-7") for k in ("ftmoe.io/risk", "ftmoe.io/decision", "ftmoe.io/policy")),
            60,
            "node-7's stale annotations swept",
        )
        assert not any(k in (env.node("node-7").metadata.labels or {}) for k in ("ftmoe.io/risk", "ftmoe.io/at-risk"))
        wait_for(lambda: own_metric("ftmoe_stale_state_swept_total", policy=policy) >= 1, 30, "the sweep counted")
    finally:
        env.core.patch_node("node-7", {"metadata": {"labels": {"ftmoe.io/maintenance": None}}})
        delete_policy(env, policy)


REBOOT = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "StandInRebootTemplate", "name": "default", "namespace": NS}


@pytest.mark.parametrize(
    ("spec", "field", "says"),
    [
        ({"remediation": {"templates": [REBOOT, {**REBOOT, "name": "again"}]}}, "spec.remediation.templates", "must not repeat a kind"),
        (
            {"remediation": {"templates": [REBOOT, {**REBOOT, "kind": "StandInFenceTemplate"}]}},
            "spec.remediation.templates",
            "every template needs a timeout",
        ),
        (
            {"remediation": {"templates": [{**REBOOT, "kind": "StandInReboot"}]}},
            "spec.remediation.templates[0].kind",
            "must end in Template",
        ),
        ({"remediation": {"templates": []}}, "spec.remediation.templates", "at least 1 items"),
        ({"schedule": [{"schedule": "every night", "duration": "1h"}]}, "spec.schedule[0].schedule", "should match"),
        (
            {"schedule": [{"schedule": "0 2 * * *", "duration": "1h", "disruptions": "Maybe"}]},
            "spec.schedule[0].disruptions",
            "Unsupported",
        ),
        ({"stormBreaker": {"maxActedOn": "200%"}}, "spec.stormBreaker.maxActedOn", "percent from 0% to 100%"),
    ],
)
def test_invalid_disruption_fields_are_refused_by_the_api_server_naming_the_field(
    env: Env, spec: dict[str, Any], field: str, says: str
) -> None:
    import json
    import uuid

    body = {
        "apiVersion": "ftmoe.io/v1alpha1",
        "kind": "FaultTolerancePolicy",
        "metadata": {"name": f"bad-{uuid.uuid4().hex[:6]}"},
        "spec": {"prometheus": {"url": "http://prom:9090"}, **spec},
    }
    with pytest.raises(ApiException) as err:
        env.custom.create_cluster_custom_object("ftmoe.io", "v1alpha1", "faulttolerancepolicies", body)
    assert err.value.status == 422
    message = json.loads(err.value.body)["message"]
    assert field in message and says in message, message
