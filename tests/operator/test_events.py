"""Events that `kubectl describe` finds: its search matches involvedObject's namespace, which
is empty for cluster-scoped objects (the real describe is run in test_operator_e2e.py)."""

from __future__ import annotations

import datetime as dt

from ftmoe.operator.events import MAX_MESSAGE, event_body

NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.timezone.utc)


def test_a_node_event_has_no_namespace_in_its_reference_and_lives_in_default() -> None:
    node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-3", "uid": "u-3"}}
    body = event_body(node, "Normal", "Cordoned", "cordoned by demo", NOW, "host")
    assert body["involvedObject"] == {"apiVersion": "v1", "kind": "Node", "name": "node-3", "uid": "u-3"}
    assert body["metadata"]["namespace"] == "default" and body["metadata"]["name"].startswith("node-3.")
    assert body["reportingComponent"] == "ftmoe-operator" and body["firstTimestamp"] == "2026-12-01T12:00:00Z"


def test_a_policy_event_is_cluster_scoped_too_and_a_pod_event_keeps_its_namespace() -> None:
    policy = {"apiVersion": "ftmoe.io/v1alpha1", "kind": "FaultTolerancePolicy", "metadata": {"name": "demo", "uid": "u"}}
    assert "namespace" not in event_body(policy, "Warning", "IntervalFailed", "x", NOW, "h")["involvedObject"]
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "team", "uid": "u"}}
    body = event_body(pod, "Normal", "CheckpointRequested", "y" * 5000, NOW, "h")
    assert body["involvedObject"]["namespace"] == "team" and body["metadata"]["namespace"] == "team"
    assert len(body["message"]) == MAX_MESSAGE
