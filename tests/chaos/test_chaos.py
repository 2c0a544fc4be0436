"""Chaos on the local cluster: the operator's invariants while its world breaks.

Each scenario runs a policy over a few nodes with injected faults while something breaks
(Prometheus frozen, the operator SIGKILLed at random points with a second replica
waiting, the API server paused 8 s, a fault storm), and a monitor samples the cluster every
half second for the invariants:

- budget: never more selected nodes unavailable (cordoned or NotReady) than maxUnavailable;
- no duplicate action: at most one Cordoned event per node and cordon;
- no action on stale data: no node's cordon changes while Prometheus is frozen;
- PodDisruptionBudgets hold: never fewer Running replicas than the PDB's minAvailable;
- no stranded cordon: after the policy is deleted, none of its cordons is left.

Small sizes, so the suite runs in `make test`; ``FTMOE_CHAOS_ROUNDS=N`` repeats the
random-kill scenario N times (a soak: `FTMOE_CHAOS_ROUNDS=20 make test-chaos`).
"""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from kubernetes import client
from live_cluster import METRICS_PORT, STEP, Env, apply_policy, delete_policy, deployment, env, inject, own_metric, running, wait_for

pytestmark = pytest.mark.cluster
__all__ = ["env"]
ROUNDS = int(os.environ.get("FTMOE_CHAOS_ROUNDS", "2"))


class Monitor:
    """Samples the selected nodes (and optionally an app's pods) in a thread; records violations."""

    def __init__(self, env: Env, nodes: list[str], budget: int, namespace: str | None = None, app: str | None = None, min_running: int = 0):
        self.env, self.nodes, self.budget = env, nodes, budget
        self.namespace, self.app, self.min_running = namespace, app, min_running
        self.violations: list[str] = []
        self.frozen = False  # set while the operator must not change any cordon
        self.samples = 0
        self.started = time.time() - 1
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _cordons(self) -> dict[str, bool]:
        nodes = self.env.core.list_node().items
        return {n.metadata.name: bool(n.spec.unschedulable) for n in nodes if n.metadata.name in self.nodes}

    def _run(self) -> None:
        before = self._cordons()
        while not self._stop.wait(0.5):
            try:
                now = self._cordons()
                unavailable = sum(now.values())
                if unavailable > self.budget:
                    self.violations.append(f"budget: {unavailable} cordoned > maxUnavailable {self.budget}: {now}")
                if self.frozen and now != before:
                    self.violations.append(f"acted while Prometheus was frozen: {before} -> {now}")
                if self.app:
                    up = len(running(self.env, self.namespace or "", self.app))
                    if up < self.min_running:
                        self.violations.append(f"PDB: {up} Running replicas < minAvailable {self.min_running}")
                before = now
                self.samples += 1
            except Exception:  # noqa: BLE001 - the API server may be the thing that is down; sample again
                time.sleep(0.5)

    def __enter__(self) -> Monitor:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def duplicate_cordons(self) -> list[str]:
        """Nodes with more than one Cordoned event since the monitor started (no uncordon happens in these tests)."""
        out = []
        for n in self.nodes:
            events = self.env.node_events(n, "Cordoned", since=self.started)
            if len(events) > 1:
                out.append(f"{n}: {len(events)} Cordoned events")
        return out


def pid_of(env: Env, component: str) -> int:
    cluster = env.cluster
    if component == "prometheus":
        return int((cluster.prometheus_dir / "prometheus.pid").read_text())
    return int(next(Path(cluster.kwok_workdir, "clusters").glob(f"*/pids/{component}.pid")).read_text())


@contextmanager
def paused(pid: int) -> Iterator[None]:
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def test_prometheus_frozen_no_action_and_no_uncordon_on_the_first_fresh_sample(env: Env) -> None:
    """Before: a cordoned node was uncordoned on the first fresh interval after an outage."""
    nodes = ["node-0", "node-1", "node-2"]
    policy = apply_policy(
        env,
        nodes,
        mode="Cordon",
        prometheus={"url": env.prometheus, "rateWindow": "15s", "timeout": "2s"},
        hysteresis={"riskFor": "5s", "healthyFor": "20s"},
    )
    try:
        inject("node-0", duration=6)
        wait_for(lambda: env.node("node-0").spec.unschedulable, 120, "node-0 cordoned")
        wait_for(lambda: "ftmoe.io/healthy-since" in (env.node("node-0").metadata.annotations or {}), 180, "node-0 healthy again")
        with Monitor(env, nodes, budget=1) as mon:
            mon.frozen = True
            with paused(pid_of(env, "prometheus")):
                time.sleep(25)  # longer than healthyFor
            time.sleep(2 * STEP)  # the first fresh intervals after the outage
            mon.frozen = False
            assert env.node("node-0").spec.unschedulable, "one fresh healthy sample does not make healthyFor"
            wait_for(lambda: not env.node("node-0").spec.unschedulable, 90, "node-0 uncordoned after healthyFor of fresh data")
        assert mon.violations == [] and mon.samples > 20, mon.violations[:5]
    finally:
        delete_policy(env, policy)


def test_sigkill_at_random_points_with_a_second_replica_keeps_every_invariant(env: Env, namespace: str) -> None:
    nodes = ["node-3", "node-4", "node-5", "node-6"]
    deployment(env, namespace, "chaos", 4, nodes)
    pdb = {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": "chaos"},
        "spec": {"minAvailable": 3, "selector": {"matchLabels": {"app": "chaos"}}},
    }
    client.PolicyV1Api(env.api).create_namespaced_pod_disruption_budget(namespace, pdb)
    policy = apply_policy(env, nodes, mode="Evict", hysteresis={"riskFor": "5s", "healthyFor": "10m"})
    second = env.spawn_operator(offset=10)  # standing by on the Lease
    rng = random.Random(int(os.environ.get("FTMOE_CHAOS_SEED", "7")))
    kills = 0
    try:
        with Monitor(env, nodes, budget=1, namespace=namespace, app="chaos", min_running=3) as mon:
            inject("node-3", duration=40)
            inject("node-4", duration=40)  # two faults, a budget of one
            for _ in range(ROUNDS):
                time.sleep(rng.uniform(0, 2 * STEP))  # anywhere in an interval: mid-query, mid-drain, mid-write
                env.kill_operator()
                kills += 1
                time.sleep(rng.uniform(0, STEP))
                env.start_operator()
            wait_for(lambda: sum(bool(env.node(n).spec.unschedulable) for n in nodes) == 1, 120, "one node cordoned")
            time.sleep(4 * STEP)
            # Whichever replica leads now dies for good: the other takes over within a Lease
            # duration and goes on (bench/failover.py measures how long it takes).
            ports = {"first": METRICS_PORT, "second": METRICS_PORT + 10}
            leader = wait_for(lambda: next((k for k, p in ports.items() if own_metric("ftmoe_leader", port=p) == 1), None), 60, "a leader")
            survivor = ports["second" if leader == "first" else "first"]
            before = own_metric("ftmoe_interval_duration_seconds_count", port=survivor, policy=policy)
            if leader == "first":
                env.kill_operator()
            else:
                second.kill()
                second.wait(timeout=30)
            wait_for(lambda: own_metric("ftmoe_leader", port=survivor) == 1, 60, "the surviving replica holding the Lease")
            wait_for(
                lambda: own_metric("ftmoe_interval_duration_seconds_count", port=survivor, policy=policy) > before,
                30,
                "the surviving replica's next interval",
            )
            time.sleep(2 * STEP)
        assert mon.violations == [] and mon.samples > 20, mon.violations[:5]
        assert mon.duplicate_cordons() == [], "a cordon survived every kill without being done twice"
        assert kills == ROUNDS
    finally:
        second.kill()
        second.wait(timeout=30)
        if env.operator is None:
            env.start_operator()  # the one the next tests use (it waits out the second's Lease)
        delete_policy(env, policy)
    wait_for(lambda: not any(env.node(n).spec.unschedulable for n in nodes), 90, "no stranded cordon after the policy is deleted")


def test_api_server_paused_the_operator_recovers_within_the_budget(env: Env) -> None:
    nodes = ["node-7", "node-8"]
    policy = apply_policy(env, nodes, mode="Cordon", hysteresis={"riskFor": "5s", "healthyFor": "10m"})
    try:
        with Monitor(env, nodes, budget=1) as mon:
            # 8 s: longer makes kube-scheduler and kube-controller-manager lose their own leader
            # election (renew deadline 10 s) and exit, which a real control plane restarts but
            # kwokctl's binary runtime does not; the rest of the suite needs them.
            with paused(pid_of(env, "kube-apiserver")):
                time.sleep(8)
            before = env.policy(policy)["status"]["lastRun"]
            wait_for(lambda: env.policy(policy)["status"]["lastRun"] != before, 90, "a completed interval after the pause")
            inject("node-7", duration=20)
            wait_for(lambda: env.node("node-7").spec.unschedulable, 120, "node-7 cordoned after the API server came back")
        assert mon.violations == [], mon.violations[:5]
        assert mon.duplicate_cordons() == []
        for component in ("kube-scheduler", "kube-controller-manager"):
            os.kill(pid_of(env, component), 0)  # still running: the pause did not take the control plane down with it
    finally:
        delete_policy(env, policy)


def test_a_fault_storm_trips_the_breaker_and_cordons_nothing(env: Env) -> None:
    nodes = ["node-9", "node-10", "node-11", "node-12", "node-13", "node-14"]
    policy = apply_policy(env, nodes, mode="Cordon", maxUnavailable=2, stormBreaker={"maxAtRisk": "30%"})
    try:
        with Monitor(env, nodes, budget=0) as mon:  # the storm breaker: nothing may be cordoned at all
            for n in nodes[:5]:
                inject(n, duration=10)
            cond = wait_for(
                lambda: next(
                    (
                        c
                        for c in env.policy(policy)["status"]["conditions"]
                        if c["type"] == "RemediationAllowed" and c["reason"] == "StormBreakerTripped"
                    ),
                    None,
                ),
                120,
                "the storm breaker to trip",
            )
            time.sleep(2 * STEP)
        assert "5 selected nodes are at risk" in cond["message"] or "selected nodes are at risk" in cond["message"]
        assert mon.violations == [], mon.violations[:5]
    finally:
        delete_policy(env, policy)
