"""The kubernetes regime's semantics on tiny fleets, where every second can be worked out by hand."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from ftmoe.simulator.kube_costs import (
    DEGRADED,
    NODE_LOST,
    KubeTimings,
    flag_default,
    infinitehbd_stats,
    parse_duration,
    timings_from_binaries,
)
from ftmoe.simulator.kubernetes_regime import Fault, FleetConfig, KubernetesFleet, View, all_down, draw_faults
from ftmoe.simulator.peers import DRAINO, NHC
from ftmoe.simulator.risk_replay import extract, oracle_matrix, risk_matrix

INFINITEHBD = Path(__file__).resolve().parents[3] / "shared" / "data" / "infinitehbd"
T = KubeTimings()
SERVICES = {"pods_per_node": 3, "single_replica_share": 0.0, "stateful_share": 0.0, "gang_nodes": 4, "spare_share": 0.0}
TRAINING = {"pods_per_node": 0, "gang_nodes": 2, "spare_share": 0.0, "gpus_per_node": 8}
GANG_GPUS = 16


def fleet(faults: list[Fault], days: float = 1.0, peer: object = None, **config: object) -> KubernetesFleet:
    return KubernetesFleet(FleetConfig(nodes=3, days=days, **config), faults, None, peer)  # type: ignore[arg-type]


def at(t: float, *actions: tuple[str, int]) -> object:
    def policy(view: View) -> list[tuple[str, int]]:
        return list(actions) if view.t == t else []

    return policy


def logs_of(f: KubernetesFleet, node: int) -> list[list[tuple[float, float]]]:
    return [f.down_log[p] for p in sorted(f._first_nodes[node])]  # type: ignore[attr-defined]


@pytest.fixture(autouse=True)
def remember_first_nodes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Remember where each pod started, since pods move."""
    original = KubernetesFleet._place_pods

    def place(self: KubernetesFleet) -> None:
        original(self)
        self._first_nodes = {n: set(np.flatnonzero(self.pod_node == n).tolist()) for n in range(self.c.nodes)}  # type: ignore[attr-defined]

    monkeypatch.setattr(KubernetesFleet, "_place_pods", place)


def test_a_lost_nodes_pods_are_down_for_grace_toleration_and_start_up() -> None:
    f = fleet([Fault(0, 3000.0, 20000.0, NODE_LOST, False)], **SERVICES)
    f.run()
    assert logs_of(f, 0) == [[(3000.0, 3000.0 + T.node_monitor_grace + T.unreachable_toleration + T.pod_startup)]] * 3
    assert all(not f.down_log[p] for p in f._first_nodes[1] | f._first_nodes[2])  # type: ignore[attr-defined]
    assert f.summary(86400.0)["service_downtime"] == 0.0  # two replicas of each Deployment kept serving


def test_a_graceful_drain_within_the_pdb_costs_start_up_and_no_service_downtime() -> None:
    f = fleet([], **SERVICES)
    result = f.run(at(600.0, ("drain", 0)))  # type: ignore[arg-type]
    assert logs_of(f, 0) == [[(600.0, 600.0 + T.pod_startup)]] * 3
    assert result["service_downtime"] == 0.0 and f.evictions == 3
    assert result["false_drains_per_100_node_days"] > 0  # no fault followed it


def test_the_pdb_holds_an_eviction_while_a_sibling_is_down_and_a_later_interval_retries() -> None:
    f = fleet([Fault(1, 300.0, 20000.0, NODE_LOST, False)], **SERVICES)
    f.run(at(600.0, ("drain", 0)))  # type: ignore[arg-type]
    # node 1's replicas are replaced at 300 + 350 and Ready 60 s later; the retry at 900 goes through
    assert logs_of(f, 0) == [[(900.0, 900.0 + T.pod_startup)]] * 3
    assert f.evictions == 3


def test_statefulset_pods_wait_for_the_repair_unless_a_peer_fences_the_node() -> None:
    stateful = {**SERVICES, "stateful_share": 1.0}
    lost = [Fault(0, 3000.0, 40000.0, NODE_LOST, False)]
    alone = fleet(lost, **stateful)
    alone.run()
    assert logs_of(alone, 0) == [[(3000.0, 40000.0 + T.pod_startup)]] * 3
    fenced = fleet(lost, peer=NHC, **stateful)
    fenced.run()
    assert logs_of(fenced, 0) == [[(3000.0, 3000.0 + T.node_monitor_grace + NHC.after + NHC.extra + T.pod_startup)]] * 3


def test_a_lost_training_member_costs_the_gang_its_work_since_the_checkpoint_and_the_wait() -> None:
    f = fleet([Fault(0, 3000.0, 50000.0, NODE_LOST, False)], days=0.1, **TRAINING)
    f.run()
    work = 3000.0 % 1800.0
    wait = T.taint_eviction + T.training_restart  # a spare node takes the member once its pod is deleted
    assert f.lost_gpu_seconds == pytest.approx(GANG_GPUS * (work + wait))


def test_without_a_spare_node_the_gang_waits_for_the_repair() -> None:
    f = KubernetesFleet(FleetConfig(nodes=2, days=0.1, **TRAINING), [Fault(0, 3000.0, 6000.0, NODE_LOST, False)])  # type: ignore[arg-type]
    f.run()
    assert f.lost_gpu_seconds == pytest.approx(GANG_GPUS * (1200.0 + (6000.0 - 3000.0) + T.training_restart))


def test_a_planned_drain_of_a_training_member_costs_a_checkpoint_and_a_restart_not_the_work() -> None:
    f = fleet([], days=0.1, **TRAINING)
    f.run(at(1500.0, ("drain", 0)))  # type: ignore[arg-type]
    assert f.lost_gpu_seconds == pytest.approx(GANG_GPUS * (T.checkpoint_cost + T.training_restart))


def test_a_degraded_member_slows_the_gang_until_a_peer_drains_it() -> None:
    slow = [Fault(0, 600.0, 2400.0, DEGRADED, False)]
    alone = fleet(slow, days=0.1, **TRAINING)
    alone.run()
    assert alone.lost_gpu_seconds == pytest.approx(GANG_GPUS * 0.5 * 1800.0)
    drained = fleet(slow, days=0.1, peer=DRAINO, **TRAINING)
    drained.run()
    seen = 600.0 + 600.0  # the health condition shows 10 minutes in
    assert drained.lost_gpu_seconds == pytest.approx(GANG_GPUS * (0.5 * (seen - 600.0) + T.checkpoint_cost + T.training_restart))


def test_service_downtime_is_the_time_no_replica_was_ready() -> None:
    assert all_down([[(0.0, 10.0)], [(5.0, 20.0)], [(8.0, 30.0)]], 100.0) == 2.0
    assert all_down([[(0.0, 10.0)], []], 100.0) == 0.0
    assert all_down([[(0.0, 10.0), (50.0, 200.0)]], 100.0) == 60.0


def test_the_operators_decision_path_drains_ahead_of_a_predicted_fault() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
    from downtime_kubernetes import OperatorPolicy

    config = FleetConfig(nodes=3, days=1.0, **SERVICES)  # type: ignore[arg-type]
    lost = [Fault(0, 30 * 300.0, 60000.0, NODE_LOST, True)]
    risk = oracle_matrix(config.intervals, 3, [(0, 30, 200, True, False)], 3)
    f = KubernetesFleet(config, lost, risk)
    f.run(OperatorPolicy(3, config, {"maxUnavailable": 1}))  # 5 % of 3 nodes rounds down to none
    # risk 1 from interval 27; riskFor (60 s) holds at 28, where the node is cordoned and drained
    assert logs_of(f, 0) == [[(28 * 300.0, 28 * 300.0 + T.pod_startup)]] * 3
    assert f.drains == [(28 * 300.0, 0)]
    assert f.summary(86400.0)["false_drains_per_100_node_days"] == 0.0


def test_the_cost_model_declines_when_acting_costs_more_than_the_risk_it_removes() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
    from downtime_kubernetes import OperatorPolicy

    config = FleetConfig(nodes=3, days=0.2, **SERVICES)  # type: ignore[arg-type]
    risk = np.full((config.intervals, 3), 0.1, np.float32)  # 0.1 x 410 s < 60 s: a move costs more
    policy = OperatorPolicy(3, config, {"thresholds": {"annotate": 0.05, "cordon": 0.05, "evict": 0.8}})
    f = KubernetesFleet(config, [], risk)
    f.run(policy)
    assert f.drains == [] and f.evictions == 0


def test_fault_draws_follow_the_fleets_rate_one_fault_at_a_time_per_node() -> None:
    stats = infinitehbd_stats(INFINITEHBD)
    config = FleetConfig(nodes=400, days=345.0, predictable_share=0.4)
    faults = draw_faults(config, stats, np.random.default_rng(1))
    expected = stats.per_node_day * 400 * 345
    assert 0.8 * expected < len(faults) <= expected + 4 * np.sqrt(expected)  # overlaps are dropped
    by_node: dict[int, list[Fault]] = {}
    for f in faults:
        by_node.setdefault(f.node, []).append(f)
    assert all(a.end <= b.onset for fs in by_node.values() for a, b in zip(fs, fs[1:]))
    assert 0.3 < np.mean([f.predictable for f in faults]) < 0.5


def test_infinitehbd_gives_its_rate_classes_and_repair_times() -> None:
    stats = infinitehbd_stats(INFINITEHBD)
    assert "584 faults" in stats.source
    assert 200 < stats.server_days_per_fault < 280  # about one per 240 server-days
    assert sum(stats.class_shares.values()) == pytest.approx(1.0)
    assert 10 * 3600 < np.median(stats.repair_seconds) < 30 * 3600


def test_timings_are_read_from_the_binaries_help() -> None:
    kcm = "      --node-monitor-grace-period duration     Amount of time ... (default 50s)\n"
    assert flag_default(kcm, "--node-monitor-grace-period") == 50.0
    assert [parse_duration(x) for x in ("1m0s", "300", "1h30m", "500ms")] == [60.0, 300.0, 5400.0, 0.5]
    with pytest.raises(ValueError, match="--missing"):
        flag_default(kcm, "--missing")
    with pytest.raises(FileNotFoundError, match="ftmoe cluster up"):
        timings_from_binaries(Path("/nonexistent"))


def test_replayed_risk_keeps_the_real_lead_up_and_hides_a_dead_node() -> None:
    labels = np.zeros((60, 2), np.int8)
    labels[30:35, 0] = 1
    ends = np.arange(5, 55)
    prob = np.stack([np.linspace(0, 1, 60)[ends], 10 + np.linspace(0, 1, 60)[ends]], axis=1)  # host 1 never faults
    traces = extract(prob, ends, labels, lookback=4, horizon=2)
    assert len(traces.leadups) == 1
    np.testing.assert_allclose(traces.leadups[0], np.linspace(0, 1, 60)[26:30])
    healthy_ends = {round(float(x), 6) for h in traces.healthy for x in h}
    assert not healthy_ends & {round(float(x), 6) for x in np.linspace(0, 1, 60)[26:35]}  # nothing near the fault
    risk = risk_matrix(traces, 100, 3, [(1, 50, 60, True, False)], np.random.default_rng(0))
    np.testing.assert_allclose(risk[46:50, 1], traces.leadups[0])
    assert np.isnan(risk[50:60, 1]).all() and not np.isnan(risk[60:, 1]).any()
