"""The operator end to end on the local cluster: real API server, scheduler, Prometheus,
the simulator's live mode for metrics and faults, and the operator running as its own
ServiceAccount under deploy/base's ClusterRole (so every call it makes passes real RBAC).

Each test owns a few nodes (a policy selects them by hostname) so that the tests share
one operator and one simulator without stepping on each other."""

from __future__ import annotations

import functools
import json
import os
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from live_cluster import (
    FTMOE,
    METRICS_PORT,
    SIM_PORT,
    STEP,
    Env,
    apply_policy,
    delete_policy,
    deployment,
    env,
    inject,
    own_metric,
    running,
    side_by_side,
    wait_for,
)

from ftmoe.cluster.operator_access import REPO

pytestmark = pytest.mark.cluster
__all__ = ["env"]  # the fixture, imported so that pytest finds it here


def test_story_observe_budget_training_and_ownership_side_by_side(env: Env, namespace: str) -> None:
    """Five scenarios on disjoint nodes at once (live_cluster.side_by_side): the story
    (nodes 0-3), Observe mode (6-7), a human's cordon (8-9), the budget (10-13) and
    checkpointing (14-15). The tests that restart the operator or need quiet run alone below."""
    side_by_side(
        {
            "story": functools.partial(story_predict_cordon_evict_reschedule_uncordon, env, namespace),
            "observe": functools.partial(observe_mode_changes_nothing_on_nodes, env, namespace),
            "human cordon": functools.partial(a_human_cordon_stays_the_humans_and_deleting_the_policy_undoes_its_own, env),
            "budget": functools.partial(budget_holds_when_more_nodes_fail_than_it_allows, env),
            "training": functools.partial(training_pods_get_checkpoint_intervals_and_checkpoint_before_eviction, env, namespace),
        }
    )


def story_predict_cordon_evict_reschedule_uncordon(env: Env, namespace: str) -> None:
    nodes = ["node-0", "node-1", "node-2", "node-3"]
    started = time.time() - 1
    deployment(env, namespace, "story", 8, nodes)
    assert sum(1 for p in running(env, namespace, "story") if p.spec.node_name == "node-1") == 2
    policy = apply_policy(env, nodes, learning={"tuneEvery": 20, "tuneEpochs": 2})
    try:
        inject("node-1")
        pred = wait_for(
            lambda: (p := env.prediction(policy, "node-1")) and (p["status"].get("risk") or 0) >= 0.6 and p,
            120,
            "node-1's NodeFaultPrediction to rise over the cordon threshold",
        )
        assert pred["status"]["faultType"] == "memory" and pred["status"]["drivers"]
        wait_for(lambda: env.node("node-1").spec.unschedulable, 60, "node-1 cordoned")
        node = env.node("node-1")
        ann = node.metadata.annotations
        assert ann["ftmoe.io/cordoned-by"] == policy and float(ann["ftmoe.io/risk"]) >= 0.6
        assert node.metadata.labels.get("ftmoe.io/at-risk") == "true"
        # Drained through the Eviction API; the real scheduler puts the replicas on the other nodes.
        wait_for(
            lambda: (pods := running(env, namespace, "story")) and len(pods) == 8 and all(p.spec.node_name != "node-1" for p in pods),
            90,
            "8 replicas Running away from node-1",
        )
        env.await_node_event("node-1", "Cordoned")
        env.await_node_event("node-1", "PodsEvicted")
        # What a user looks at: describe finds the events, -L shows the risk, a healthy node no type.
        described = env.kubectl("describe", "node", "node-1").stdout
        assert "Events:  <none>" not in described and re.search(r"Normal\s+Cordoned\s+", described), described[-2000:]
        assert re.search(r"Normal\s+Cordoned\s+", env.kubectl("describe", "ftp", policy).stdout)
        risk_column = env.kubectl("get", "node", "node-1", "-L", "ftmoe.io/risk", "--no-headers").stdout.split()[-1]
        assert re.fullmatch(r"\d\.\d\d", risk_column), risk_column
        healthy = env.kubectl("get", "nfp", f"{policy}.node-0", "--no-headers").stdout.split()
        assert healthy[3] == "-" and re.fullmatch(r"\d\.\d\d", healthy[2]), healthy
        wide = env.kubectl("get", "nfp", "-o", "wide", "-l", f"ftmoe.io/policy={policy}").stdout.splitlines()
        assert all(len(line) <= 200 for line in wide), "\n".join(wide)
        # Recovery: the fault ends, the risk stays low for healthyFor, the node comes back.
        wait_for(lambda: not env.node("node-1").spec.unschedulable, 180, "node-1 uncordoned after recovery")
        ann = env.node("node-1").metadata.annotations
        assert "ftmoe.io/cordoned-by" not in ann
        env.await_node_event("node-1", "Uncordoned")
        # The node is patched mid-interval and the status at its end: wait for that interval to finish.
        done = wait_for(
            lambda: (
                (d := {(a["node"], a["action"]) for a in env.policy(policy)["status"]["recentActions"] if a["outcome"] == "done"})
                >= {("node-1", "cordon"), ("node-1", "drain"), ("node-1", "uncordon")}
                and d
            ),
            3 * STEP,
            "cordon, drain and uncordon in recentActions",
        )
        assert done
        # The operator graded its own alarm against the MemoryPressure the node really showed.
        graded = env.policy(policy)["status"]["selfGrading"]
        assert graded["faults"] == 1, f"one injected fault is one fault: {graded}"
        assert graded["hits"] >= 1 and graded["caught"] + graded["late"] == 1
        assert any(a["node"] == "node-1" and a["outcome"] == "hit" for a in graded["recentAlarms"])
        report = subprocess.run(
            [FTMOE, "operator", "report", policy, "--kubeconfig", str(env.sa_kubeconfig.parent / "admin")],
            capture_output=True,
            text=True,
            check=False,
        )
        assert report.returncode == 0 and "node-1" in report.stdout and "hit" in report.stdout, report.stderr
        assert "of 1 faults alarmed at or before their onset" in report.stdout and "onset = the first interval" in report.stdout
        # Online tuning ran in the operator's background thread on what it recorded (20 intervals in).
        tuning = wait_for(lambda: env.policy(policy)["status"]["model"].get("lastTuning"), 150, "a first online tuning")
        assert tuning["outcome"] in ("promoted", "kept", "skipped") and tuning["reason"], tuning
        if tuning["outcome"] == "promoted":
            assert (env.logs / "state" / "models" / policy / "current.json").is_file()
            assert env.policy(policy)["status"]["model"]["version"] == tuning["version"]
        assert (env.logs / "state" / "buffers" / f"{policy}.npz").is_file()
        # Only the faulty node was touched.
        assert not any(env.node(n).spec.unschedulable for n in nodes)
        assert all(not env.node_events(n, "Cordoned", since=started) for n in ("node-0", "node-2", "node-3"))
    finally:
        delete_policy(env, policy)


def test_pdb_blocks_eviction_is_reported_retried_and_survives_a_restart(env: Env, namespace: str) -> None:
    nodes = ["node-4", "node-5"]
    deployment(env, namespace, "guarded", 2, ["node-5"], pinned=True)
    pdb = {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": "guarded"},
        "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "guarded"}}},
    }
    client.PolicyV1Api(env.api).create_namespaced_pod_disruption_budget(namespace, pdb)
    policy = apply_policy(env, nodes)
    try:
        inject("node-5", duration=40)
        wait_for(lambda: blocked_evictions() >= 2, 150, "evictions refused by the PDB, and retried")
        env.await_node_event("node-5", "EvictionBlocked")
        assert own_metric("ftmoe_drain_blocked_age_seconds", policy=policy, node="node-5") > 0, "a stuck drain shows its age"
        assert len(running(env, namespace, "guarded")) == 2  # the PDB held
        status = env.policy(policy)["status"]
        assert any(a["reason"] == "EvictionBlocked" for a in status["recentActions"])
        # A restart mid-drain: state is on the node, so nothing is cordoned or started twice.
        env.stop_operator()
        env.start_operator()
        client.PolicyV1Api(env.api).delete_namespaced_pod_disruption_budget("guarded", namespace)
        wait_for(
            lambda: not any(p.spec.node_name == "node-5" for p in running(env, namespace, "guarded")),
            90,
            "the guarded pods evicted once the PDB is gone",
        )
        cordoned, started = env.policy_events(policy, "Cordoned"), env.policy_events(policy, "DrainStarted")
        assert len(cordoned) == 1 and len(started) == 1 and all((e.count or 1) == 1 for e in cordoned + started)
    finally:
        delete_policy(env, policy)


def blocked_evictions() -> float:
    return own_metric("ftmoe_blocked_actions_total{", reason="EvictionBlocked")


def observe_mode_changes_nothing_on_nodes(env: Env, namespace: str) -> None:
    nodes = ["node-6", "node-7"]
    deployment(env, namespace, "watched", 2, ["node-6"], pinned=True)
    before = {p.metadata.name for p in running(env, namespace, "watched")}
    policy = apply_policy(env, nodes, mode="Observe")
    started = time.time() - 1
    try:
        inject("node-6", duration=20)
        wait_for(
            lambda: (p := env.prediction(policy, "node-6")) and p["status"].get("action") == "would-cordon",
            120,
            "a would-cordon prediction for node-6",
        )
        time.sleep(3 * STEP)
        assert not env.node("node-6").spec.unschedulable
        assert {p.metadata.name for p in running(env, namespace, "watched")} == before
        env.await_node_event("node-6", "WouldCordon", since=started)
        assert not env.node_events("node-6", "Cordoned", since=started)
        conditions = {c["type"]: c for c in env.policy(policy)["status"]["conditions"]}
        assert conditions["RemediationAllowed"]["reason"] == "ObserveMode"
    finally:
        delete_policy(env, policy)


def test_prometheus_unreachable_means_no_actions_and_a_false_condition(env: Env) -> None:
    nodes = ["node-8", "node-9"]
    policy = apply_policy(env, nodes, prometheus={"url": "http://127.0.0.1:1", "timeout": "2s"})
    try:
        inject("node-8", duration=20)
        cond = wait_for(
            lambda: next(
                (c for c in env.policy(policy)["status"]["conditions"] if c["type"] == "MetricsAvailable" and c["status"] == "False"), None
            ),
            60,
            "MetricsAvailable=False",
        )
        assert cond["reason"] == "PrometheusUnavailable" and "connection was refused" in cond["message"]
        time.sleep(6 * STEP)  # the fault is under way; no data means no action
        assert not env.node("node-8").spec.unschedulable
        # No node has data: the policy says so once, and no node or prediction is marked stale one by one.
        assert env.prediction(policy, "node-8") is None
        assert env.policy(policy)["status"]["staleNodes"] == 2
    finally:
        delete_policy(env, policy)


def budget_holds_when_more_nodes_fail_than_it_allows(env: Env) -> None:
    nodes = ["node-10", "node-11", "node-12", "node-13"]
    policy = apply_policy(env, nodes, mode="Cordon", maxUnavailable=1)
    try:
        for n in nodes[:3]:
            inject(n, duration=16)
        most = 0
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            most = max(most, sum(1 for n in nodes if env.node(n).spec.unschedulable))
            if most and any(env.node_events(n, "BudgetExhausted") for n in nodes):
                break
            time.sleep(1)
        for _ in range(3 * STEP):  # and it keeps holding
            most = max(most, sum(1 for n in nodes if env.node(n).spec.unschedulable))
            time.sleep(1)
        assert most == 1
        wait_for(lambda: any(env.node_events(n, "BudgetExhausted") for n in nodes), 30, "a BudgetExhausted event")
        blocked = [a for a in env.policy(policy)["status"]["recentActions"] if a["reason"] == "BudgetExhausted"]
        assert blocked and "at most 1" in blocked[0]["message"]
    finally:
        delete_policy(env, policy)


@pytest.mark.parametrize(
    ("spec", "field", "says"),
    [
        ({"mode": "Destroy"}, "spec.mode", "Unsupported value"),
        ({"thresholds": {"annotate": 0.9, "cordon": 0.5, "evict": 0.95}}, "spec.thresholds", "annotate <= cordon <= evict"),
        ({"interval": "5 minutes"}, "spec.interval", "should match"),
        ({"interval": "500ms"}, "spec.interval", "at least 1s"),
        ({"maxUnavailable": "150%"}, "spec.maxUnavailable", "percent from 0% to 100%"),
        ({"model": {"source": "Path"}}, "spec.model.path", "model.path is required"),
        ({"prometheus": {"url": "ftp://prom"}}, "spec.prometheus.url", "should match"),
        ({"thresholds": {"annotate": 0.1, "cordon": 0.5, "evict": 1.5}}, "spec.thresholds.evict", "less than or equal to 1"),
        ({"horizon": "1s"}, "spec.horizon", "at least spec.interval"),
    ],
)
def test_invalid_policies_are_rejected_naming_the_field(env: Env, spec: dict[str, Any], field: str, says: str) -> None:
    body = {
        "apiVersion": "ftmoe.io/v1alpha1",
        "kind": "FaultTolerancePolicy",
        "metadata": {"name": f"bad-{uuid.uuid4().hex[:6]}"},
        "spec": {"prometheus": {"url": "http://prom:9090"}, **spec},
    }
    if "prometheus" in spec:
        body["spec"]["prometheus"] = spec["prometheus"]
    with pytest.raises(ApiException) as err:
        env.custom.create_cluster_custom_object("ftmoe.io", "v1alpha1", "faulttolerancepolicies", body)
    assert err.value.status == 422
    message = json.loads(err.value.body)["message"]
    assert field in message and says in message, message


def training_pods_get_checkpoint_intervals_and_checkpoint_before_eviction(env: Env, namespace: str) -> None:
    nodes = ["node-14", "node-15"]
    binding = yaml.safe_load((REPO / "deploy" / "optional" / "checkpointing-rolebinding.yaml").read_text())
    binding["metadata"]["namespace"] = namespace  # the opt-in: the operator may annotate pods here
    env.kubectl("apply", "-f", "-", input=yaml.safe_dump(binding))
    deployment(env, namespace, "trainer", 2, ["node-14"], pinned=True, labels={"ftmoe.io/training": "true"})
    policy = apply_policy(
        env,
        nodes,
        checkpointing={
            "podSelector": {"matchLabels": {"ftmoe.io/training": "true"}},
            "checkpointCost": "10s",
            "minInterval": "1m",
            "maxInterval": "2h",
            "cooldown": "0s",
            "minChange": 0.05,
            "ackTimeout": "30s",
        },
    )
    interval_key, request_key = "ftmoe.io/checkpoint-interval-seconds", "ftmoe.io/checkpoint-request"
    try:

        def intervals() -> list[int]:
            return [int((p.metadata.annotations or {}).get(interval_key, 0)) for p in running(env, namespace, "trainer")]

        calm = wait_for(lambda: (v := intervals()) and all(v) and v, 60, "checkpoint intervals on the training pods")
        original = {p.metadata.name for p in running(env, namespace, "trainer")}
        inject("node-14", duration=40)
        wait_for(
            lambda: (v := intervals()) and all(0 < x < min(calm) for x in v),
            120,
            f"the interval to shrink below {min(calm)}s as node-14's risk rises",
        )

        def requested() -> list[client.V1Pod]:
            """Pods whose latest request was made for the drain (not an earlier alarm's)."""
            drain = (env.node("node-14").metadata.annotations or {}).get("ftmoe.io/drain-started-at")
            pods = [p for p in running(env, namespace, "trainer") if p.metadata.name in original]
            return [p for p in pods if drain and (p.metadata.annotations or {}).get("ftmoe.io/checkpoint-requested-at", "") >= drain]

        pods = wait_for(lambda: (r := requested()) and len(r) == 2 and r, 90, "a checkpoint request on both pods before eviction")
        asked = time.monotonic()
        assert all(p.spec.node_name == "node-14" for p in pods)  # requested, not yet evicted
        # The first pod's job acknowledges; the second never does.
        first, second = sorted(pods, key=lambda p: p.metadata.name)
        ack = {"metadata": {"annotations": {"ftmoe.io/checkpoint-ack": first.metadata.annotations[request_key]}}}
        env.core.patch_namespaced_pod(first.metadata.name, namespace, ack)
        names = lambda: {p.metadata.name for p in running(env, namespace, "trainer")}  # noqa: E731
        wait_for(lambda: first.metadata.name not in names(), 25, "the acknowledged pod evicted before the ack timeout")
        assert second.metadata.name in names() and time.monotonic() - asked < 30
        wait_for(lambda: second.metadata.name not in names(), 60, "the other pod evicted after the ack timeout")
        assert time.monotonic() - asked >= 20  # it waited (requested-at has 1 s resolution; intervals are 5 s)
        env.await_node_event("node-14", "WaitingForCheckpoint")  # posted with the requests; checked last so it cannot delay the ack
    finally:
        delete_policy(env, policy)


def test_manifests_and_examples_pass_the_api_server(env: Env) -> None:
    """deploy/base (kustomize), the opt-in bindings and every example policy, validated by the real API server;
    the operator's pod spec meets the namespace's `restricted` Pod Security level."""
    root = Path(__file__).resolve().parents[2]
    base = env.kubectl("apply", "-k", str(root / "deploy" / "base"), "--dry-run=server")
    assert "deployment.apps/ftmoe-operator" in base.stdout and "PodSecurity" not in base.stderr, base.stderr
    assert "validatingadmissionpolicy.admissionregistration.k8s.io/ftmoe-operator-pod-writes" in base.stdout
    for optional in sorted((root / "deploy" / "optional").glob("*.yaml")):
        for doc in yaml.safe_load_all(optional.read_text()):
            if "namespace" in doc["metadata"]:
                doc["metadata"]["namespace"] = "default"  # the file's example namespace need not exist
            out = env.kubectl("apply", "-f", "-", "--dry-run=server", input=yaml.safe_dump(doc))
            assert re.search(r"(cluster)?role(binding)?\.rbac\.authorization\.k8s\.io/ftmoe-operator-", out.stdout), out.stderr
    assert "poddisruptionbudget.policy/ftmoe-operator" in base.stdout
    for example in ["observe.yaml", "evict-workers.yaml", "local-cluster.yaml", "llm-training/policy.yaml"]:
        out = env.kubectl("apply", "-f", str(root / "deploy" / "examples" / example), "--dry-run=server")
        assert "faulttolerancepolicy.ftmoe.io" in out.stdout, out.stderr
    trainer = env.kubectl("apply", "-k", str(root / "deploy" / "examples" / "llm-training"), "--dry-run=client")
    assert "deployment.apps/trainer" in trainer.stdout


def fresh_shell(command: str, cluster: str, setup: str = "", timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``command`` pasted into a new login-less shell after the README's set-up (the venv
    activated), with nothing inherited but HOME and the system PATH."""
    venv = Path(sys.executable).parent.parent
    env = {"HOME": os.environ.get("HOME", "/root"), "PATH": "/usr/local/bin:/usr/bin:/bin", "FTMOE_CLUSTER": cluster}
    script = f"source {venv}/bin/activate && {setup}{command}"
    return subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, timeout=timeout, env=env, cwd=Path(__file__).resolve().parents[2]
    )


def test_the_commands_the_demo_prints_work_in_a_fresh_shell(env: Env, local_cluster_name: str) -> None:
    from ftmoe.demo import try_commands

    nodes = ["node-12", "node-13"]
    policy = apply_policy(env, nodes, mode="Observe")
    try:
        wait_for(lambda: (env.policy(policy).get("status") or {}).get("selfGrading"), 60, "a graded interval")
        for command, _ in try_commands(
            env.sa_kubeconfig.parent / "admin",
            env.prometheus,
            env.logs,
            policy=policy,
            node="node-12",
            sim_port=SIM_PORT,
            metrics_port=METRICS_PORT,
        ):
            if command == "ftmoe cluster down":
                continue  # the session's cluster outlives this test; `down` has its own tests
            command = command.replace("node=node-7", "node=node-13")
            proc = fresh_shell(f"timeout 8 {command}" if command.endswith(" -w") else command, local_cluster_name)
            assert proc.returncode in ((0, 124) if command.endswith(" -w") else (0,)), f"{command}: {proc.stderr}"
            assert proc.stdout.strip() and "Traceback" not in proc.stderr, command
    finally:
        delete_policy(env, policy)


def test_the_readme_first_policy_commands_work_in_a_fresh_shell(env: Env, local_cluster_name: str) -> None:
    """README "Install and first policy", on the local cluster after `eval "$(ftmoe cluster env)"`.
    observe.yaml's Prometheus URL does not resolve here: its condition says so in words, and
    it names the other policy that selects the same nodes."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("### Install and first policy")[1].split("```sh\n")[1].split("```")[0]
    commands = [line.split(" #")[0].strip() for line in section.splitlines() if line.strip().startswith("kubectl ")]
    assert len(commands) >= 5
    other = apply_policy(env, ["node-14", "node-15"], mode="Observe")
    try:
        for command in commands:
            proc = fresh_shell(command, local_cluster_name, setup='eval "$(ftmoe cluster env)" && ')
            assert proc.returncode == 0, f"{command}: {proc.stderr}"
            if "-L ftmoe.io/risk" in command:
                assert "RISK" in proc.stdout.splitlines()[0]
        conditions = wait_for(
            lambda: {c["type"]: c for c in (env.policy("observe").get("status") or {}).get("conditions", [])} or None,
            60,
            "the observe policy's first interval",
        )
        metrics = conditions["MetricsAvailable"]
        assert metrics["reason"] == "PrometheusUnavailable" and "does not resolve" in metrics["message"], metrics
        assert "%28" not in metrics["message"] and "HTTPConnectionPool" not in metrics["message"]
        shared = conditions["NodesExclusive"]
        assert shared["status"] == "False" and other in shared["message"], shared
    finally:
        delete_policy(env, other)
        env.kubectl(
            "delete",
            "-f",
            str(Path(__file__).resolve().parents[2] / "deploy" / "examples" / "observe.yaml"),
            "--ignore-not-found",
            check=False,
        )
        env.kubectl("-n", "ftmoe-system", "delete", "deployment", "ftmoe-operator", "--ignore-not-found", check=False)


def a_human_cordon_stays_the_humans_and_deleting_the_policy_undoes_its_own(env: Env) -> None:
    """Before: after `kubectl uncordon` and `kubectl cordon` within one interval the operator
    took the cordon for its own and uncordoned the node later; deleting a policy left its
    cordons behind for good."""
    nodes = ["node-8", "node-9"]
    started = time.time() - 1
    policy = apply_policy(env, nodes, mode="Cordon", maxUnavailable=2, hysteresis={"riskFor": "5s", "healthyFor": "15s"})
    try:
        for n in nodes:
            inject(n, duration=12)
        wait_for(lambda: all(env.node(n).spec.unschedulable for n in nodes), 120, "both nodes cordoned by the policy")
        env.kubectl("uncordon", "node-8")
        env.kubectl("cordon", "node-8")  # a human's maintenance cordon, within one interval
        wait_for(
            lambda: "ftmoe.io/cordoned-by" not in (env.node("node-8").metadata.annotations or {}), 30, "node-8's cordon handed to the human"
        )
        # The faults end: the policy's own cordon is released after healthyFor, the human's stays.
        wait_for(lambda: not env.node("node-9").spec.unschedulable, 240, "node-9 uncordoned after recovery")
        time.sleep(4 * STEP)
        assert env.node("node-8").spec.unschedulable and not env.node_events("node-8", "Uncordoned", since=started)
        # Cordoned again, then the policy is deleted: its cordon goes with it, the human's stays.
        inject("node-9", duration=30)
        wait_for(lambda: env.node("node-9").spec.unschedulable, 120, "node-9 cordoned again")
    finally:
        delete_policy(env, policy)
    wait_for(lambda: not env.node("node-9").spec.unschedulable, 60, "node-9 uncordoned when its policy was deleted")
    env.await_node_event("node-9", "CordonReleased")
    ann = env.node("node-9").metadata.annotations or {}
    assert not [k for k in ann if k.startswith("ftmoe.io/") and k != "ftmoe.io/cordon-history"], ann
    assert env.node("node-8").spec.unschedulable, "the human's cordon is not the policy's to undo"
    env.kubectl("uncordon", "node-8")


def test_warm_intervals_read_watches_and_write_only_changes(env: Env) -> None:
    """Against the real API server's watches: once the caches are filled, an interval makes
    no read request at all, no cache lists again, and a steady policy writes next to nothing
    (no node and no NodeFaultPrediction whose shown state did not change)."""
    policy = apply_policy(env, ["node-14", "node-15"], mode="Observe")
    try:

        def intervals() -> float:
            return own_metric("ftmoe_interval_duration_seconds_count", policy=policy)

        wait_for(lambda: intervals() >= 3, 30 * STEP, "three intervals")
        lists, seen = own_metric("ftmoe_informer_lists_total"), intervals()
        incremental = own_metric("ftmoe_prometheus_window_fetches_total", kind="incremental")
        reads, writes, changed = [], [], []
        while len(reads) < 3:
            wait_for(lambda last=seen: intervals() > last, 10 * STEP, "the next interval")
            seen = intervals()
            reads.append(own_metric("ftmoe_interval_api_requests{", policy=policy, kind="reads"))
            writes.append(own_metric("ftmoe_interval_api_requests{", policy=policy, kind="writes"))
            changed.append(own_metric("ftmoe_interval_changed_nodes{", policy=policy))
        assert reads == [0, 0, 0], reads
        assert own_metric("ftmoe_informer_lists_total") == lists  # the watches held: nothing was listed again
        assert max(writes) <= 1 + 2 * max(changed), (writes, changed)  # a status write, plus a node and its prediction per change
        assert own_metric("ftmoe_informer_objects", resource="nodes") >= 16
        # Steady intervals read only their new steps from Prometheus, not the whole window
        # (one of the three may start off the grid, behind a slow one, and read it all).
        assert own_metric("ftmoe_prometheus_window_fetches_total", kind="incremental") - incremental >= 2
    finally:
        delete_policy(env, policy)


def test_an_incremental_window_read_equals_a_full_read_on_prometheus(env: Env) -> None:
    """The operator's window cache against the real Prometheus: a window built from the last
    one plus the new steps holds exactly what one full range query returns."""
    import numpy as np

    from ftmoe.contract.features import FEATURE_NAMES
    from ftmoe.operator.node_metrics import PrometheusSource
    from ftmoe.operator.policy import PrometheusSpec

    nodes, features = [f"node-{i}" for i in range(16)], list(FEATURE_NAMES)
    spec = PrometheusSpec(url=env.prometheus)

    def history() -> bool:  # a window's worth of scraped samples (the cluster may have just come up)
        read = PrometheusSource(spec).fetch(nodes, features, time.time() - 2 * STEP, STEP, 6, 3 * STEP)
        return bool(np.isfinite(read.values).mean() > 0.9)

    wait_for(history, 120, "a window of samples for every node")
    for _ in range(3):
        now = time.time() - 2 * STEP  # samples already scraped: both reads should see the same data
        cached = PrometheusSource(spec)
        cached.fetch(nodes, features, now - 2 * STEP, STEP, 6, 3 * STEP)
        before = PrometheusSource(spec).fetch(nodes, features, now, STEP, 6, 3 * STEP)
        w = cached.fetch(nodes, features, now + 0.05, STEP, 6, 3 * STEP)  # two steps on, 50 ms late
        full = PrometheusSource(spec).fetch(nodes, features, now, STEP, 6, 3 * STEP)
        # A scrape Prometheus took in late (a loaded machine) changes the data between the reads; then
        # the comparison says nothing about the window cache, so it is made again on later steps.
        if np.array_equal(before.values, full.values, equal_nan=True):
            break
    else:
        pytest.fail("Prometheus' data for the window changed between two full reads, three times over")
    assert w.error is None and full.error is None and not w.missing_features
    assert np.isfinite(full.values).mean() > 0.9  # the comparison is over real values, not gaps
    np.testing.assert_allclose(w.times, full.times, rtol=0, atol=0.01)  # the same grid, not merely close in epoch seconds
    np.testing.assert_array_equal(w.values, full.values)


def test_recorded_features_from_the_generated_rules_agree_with_the_feature_queries(
    env: Env, local_cluster_name: str, tmp_path: Path
) -> None:
    """`ftmoe operator recording-rules --local-cluster` loads the rules into the real
    Prometheus, which evaluates all of them; a recordedFeatures read then has every feature
    for every node, and its values track what the feature queries return (a recorded value
    is the rule's evaluation at its own time, which the test asks the feature query for)."""
    import numpy as np

    from ftmoe.contract.features import FEATURE_NAMES
    from ftmoe.operator.node_metrics import PrometheusSource, default_query, render
    from ftmoe.operator.policy import PrometheusSpec

    series = f"ftmoe_test:node_feature_{uuid.uuid4().hex[:6]}"
    name = f"recorded-{uuid.uuid4().hex[:6]}"
    manifest = tmp_path / "policy.yaml"
    prometheus = {"url": env.prometheus, "rateWindow": f"{3 * STEP}s", "recordedFeatures": series}
    spec = {"interval": f"{STEP}s", "prometheus": prometheus}
    manifest.write_text(
        yaml.safe_dump({"apiVersion": "ftmoe.io/v1alpha1", "kind": "FaultTolerancePolicy", "metadata": {"name": name}, "spec": spec})
    )
    loaded = subprocess.run(
        [FTMOE, "operator", "recording-rules", "-f", str(manifest), "--local-cluster", local_cluster_name], capture_output=True, text=True
    )
    assert loaded.returncode == 0 and "16 recording rules" in loaded.stdout, loaded.stderr
    rules_dir = Path(loaded.stdout.split("(")[-1].rstrip(")\n")).parent
    try:

        def group() -> dict[str, Any] | None:
            groups = json.load(urllib_open(f"{env.prometheus}/api/v1/rules"))["data"]["groups"]
            return next((g for g in groups if g["name"] == f"ftmoe-{name}"), None)

        g = wait_for(group, 30, "the rule group loaded")
        assert len(g["rules"]) == len(FEATURE_NAMES)
        wait_for(
            lambda: all(r["health"] == "ok" and r.get("lastEvaluation", "").startswith("20") for r in group()["rules"]),
            30,
            "rules evaluated",
        )
        nodes, features = [f"node-{i}" for i in range(16)], list(FEATURE_NAMES)
        recorded = PrometheusSource(PrometheusSpec(url=env.prometheus, recorded_features=series))
        # A window of 6 steps needs 6 evaluations of history.
        w = wait_for(
            lambda: (x := recorded.fetch(nodes, features, time.time(), STEP, 6, 3 * STEP)).complete.all() and x,
            90,
            "a complete recorded window",
        )
        assert w.error is None and w.missing_features == [] and w.recorded == series
        # Each recorded sample is the rule's value at its evaluation time: the feature query
        # asked at that time returns the same number (a scrape landing during an evaluation
        # may change a rare one).
        import urllib.parse

        def query(promql: str, at: float | None = None) -> list[dict[str, Any]]:
            args = {"query": promql, **({"time": f"{at:.3f}"} if at is not None else {})}
            return json.load(urllib_open(f"{env.prometheus}/api/v1/query?{urllib.parse.urlencode(args)}"))["data"]["result"]

        same = compared = 0
        for feature in features:
            samples = query(f'{series}{{feature="{feature}"}}[{4 * STEP}s]')
            at = max(float(v[-1][0]) for s in samples for v in [s["values"]])
            kept = {s["metric"]["node"]: float(v[1]) for s in samples for v in s["values"] if float(v[0]) == at}
            promql = render(default_query(feature, "node") or "", "node", None, 3 * STEP)
            asked = {s["metric"]["node"]: float(s["value"][1]) for s in query(promql, at)}
            assert set(kept) == set(asked) == set(nodes), feature
            compared += len(kept)
            same += sum(1 for n in kept if np.isclose(kept[n], asked[n], rtol=1e-9, atol=1e-12, equal_nan=True))
        assert same >= 0.9 * compared, f"{same} of {compared} recorded values equal the feature query at their evaluation time"
    finally:
        (rules_dir / f"ftmoe-{name}.yml").unlink(missing_ok=True)
        urllib_open(f"{env.prometheus}/-/reload", method="POST")


def urllib_open(url: str, method: str = "GET") -> Any:
    import urllib.request

    return urllib.request.urlopen(urllib.request.Request(url, method=method), timeout=30)
