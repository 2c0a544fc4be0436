"""Pod migrations from watch events become host-graph edges."""

from __future__ import annotations

from typing import Any

from ftmoe.operator.migrations import MigrationTracker, owner_key
from ftmoe.operator.node_metrics import window_times


def pod(uid: str, node: str | None, owner: str = "rs-a", deleting: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {"uid": uid, "namespace": "ns", "ownerReferences": [{"kind": "ReplicaSet", "name": owner, "controller": True}]}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {"metadata": meta, "spec": {"nodeName": node} if node else {}}


def test_departure_and_arrival_of_one_owner_in_one_interval_is_an_edge() -> None:
    t = MigrationTracker()
    nodes = ["n0", "n1", "n2"]
    t.observe(None, pod("p1", "n0"), 100.0)  # listed at start-up: no arrival
    t.observe("ADDED", pod("p2", None), 101.0)  # pending: not placed yet
    t.observe("MODIFIED", pod("p1", "n0", deleting=True), 103.0)
    t.observe("MODIFIED", pod("p2", "n2"), 104.0)
    t.observe("ADDED", pod("q1", "n1", owner="rs-b"), 104.0)  # another owner, no departure: no edge
    edges = t.edges(nodes, window_times(110.0, 5.0, 3), 5.0)  # intervals ending 100, 105, 110
    assert edges.tolist() == [[1, 0, 2]]


def test_moves_in_different_intervals_or_to_unknown_nodes_are_not_edges() -> None:
    t = MigrationTracker()
    t.observe("ADDED", pod("p1", "n0"), 90.0)
    t.observe("DELETED", pod("p1", "n0"), 96.0)
    t.observe("ADDED", pod("p2", "n1"), 101.0)  # next interval
    t.observe("ADDED", pod("p3", "elsewhere"), 97.0)
    assert t.edges(["n0", "n1"], window_times(105.0, 5.0, 3), 5.0).shape == (0, 3)


def test_operator_evictions_count_as_departures() -> None:
    t = MigrationTracker()
    t.record_eviction("ns/ReplicaSet/rs-a", "n1", 101.0)
    t.observe("ADDED", pod("p9", "n0"), 102.0)
    assert t.edges(["n0", "n1"], window_times(105.0, 5.0, 1), 5.0).tolist() == [[0, 1, 0]]


def test_old_moves_are_forgotten_and_ownerless_pods_ignored() -> None:
    t = MigrationTracker(keep_seconds=10)
    t.observe("ADDED", pod("p1", "n0"), 0.0)
    t.observe("ADDED", pod("p2", "n0"), 100.0)
    assert [m.time for m in t.arrivals] == [100.0]
    assert owner_key({"namespace": "x"}) is None
