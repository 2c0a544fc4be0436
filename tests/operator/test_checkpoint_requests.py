"""Training jobs' checkpoint annotations, and the checkpoint-before-evict gate."""

from __future__ import annotations

from typing import Any

from ftmoe.checkpoint import ACK, INTERVAL, REQUEST
from ftmoe.operator import annotations as A
from ftmoe.operator.checkpoint_requests import REQUESTED_AT, CheckpointGate, plan_jobs
from ftmoe.operator.policy import PolicySpec

SPEC = PolicySpec.from_dict(
    {
        "prometheus": {"url": "http://p"},
        "checkpointing": {
            "podSelector": {"matchLabels": {"train": "yes"}},
            "checkpointCost": "60s",
            "precision": 0.5,
            "minInterval": "1m",
            "cooldown": "0s",
            "ackTimeout": "2m",
        },
    }
)
CP = SPEC.checkpointing
assert CP is not None
NOW = 1_000_000.0


def pod(name: str, node: str, owner: str = "job-a", labels: dict[str, str] | None = None, **ann: str) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "namespace": "ml",
            "labels": labels if labels is not None else {"train": "yes"},
            "annotations": dict(ann),
            "ownerReferences": [{"kind": "Job", "name": owner, "controller": True}],
        },
        "spec": {"nodeName": node},
        "status": {"startTime": A.rfc3339(NOW - 7200)},
    }


def test_every_pod_of_a_job_gets_the_same_interval_which_shrinks_with_risk() -> None:
    pods = [pod("a0", "n0"), pod("a1", "n1"), pod("web", "n1", labels={"app": "web"})]
    calm = plan_jobs(CP, pods, {"n0": 0.01, "n1": 0.01}, {}, 300, 0.6, NOW)
    assert {u.name for u in calm} == {"a0", "a1"}  # the unlabelled pod is not a training job
    intervals = {u.annotations[INTERVAL] for u in calm}
    assert len(intervals) == 1
    risky = plan_jobs(CP, [pod("a0", "n0"), pod("a1", "n1")], {"n0": 0.01, "n1": 0.5}, {}, 300, 0.6, NOW)
    assert int(risky[0].annotations[INTERVAL]) < int(intervals.pop())


def test_an_alarm_requests_a_checkpoint_when_enough_work_is_at_risk() -> None:
    # started 2 h ago with a 1 h interval: 0 s at risk -> no request; 50 min at risk -> request (C/p = 120 s)
    fresh = [pod("a0", "n0", **{INTERVAL: "3600"})]
    assert not any(u.requested for u in plan_jobs(CP, fresh, {"n0": 0.9}, {}, 300, 0.6, NOW))
    busy = [pod("a0", "n0", **{INTERVAL: "3600", REQUEST: "4"})]
    updates = plan_jobs(CP, busy, {"n0": 0.9}, {}, 300, 0.6, NOW + 3000)
    assert updates[0].requested and updates[0].annotations[REQUEST] == "5" and "checkpoint now" in updates[0].reason
    # right after that request, the work at risk restarts from the request time
    after = [pod("a0", "n0", **{INTERVAL: "3600", REQUEST: "5", REQUESTED_AT: A.rfc3339(NOW + 3000)})]
    assert not any(u.requested for u in plan_jobs(CP, after, {"n0": 0.9}, {}, 300, 0.6, NOW + 3060))


def test_gate_requests_then_waits_for_ack_or_timeout() -> None:
    patches: list[tuple[str, dict[str, Any]]] = []
    gate = CheckpointGate(CP, lambda ns, name, patch: patches.append((name, patch)))
    started = NOW
    assert gate.before_evict(pod("web", "n0", labels={"app": "web"}), "n0", started, NOW) == "evict"
    assert gate.before_evict(pod("a0", "n0", **{REQUEST: "2"}), "n0", started, NOW) == "requested"
    assert patches[0][1]["metadata"]["annotations"][REQUEST] == "3"
    pending = pod("a0", "n0", **{REQUEST: "3", REQUESTED_AT: A.rfc3339(NOW)})
    assert gate.before_evict(pending, "n0", started, NOW + 30) == "waiting"
    assert gate.before_evict(pending, "n0", started, NOW + 121) == "evict"  # ack timeout
    acked = pod("a0", "n0", **{REQUEST: "3", REQUESTED_AT: A.rfc3339(NOW), ACK: "3"})
    assert gate.before_evict(acked, "n0", started, NOW + 5) == "evict"
    # a request from before this drain does not count
    old = pod("a0", "n0", **{REQUEST: "3", REQUESTED_AT: A.rfc3339(NOW - 600), ACK: "3"})
    assert gate.before_evict(old, "n0", started, NOW + 5) == "requested"


def test_no_new_request_while_the_last_one_is_pending() -> None:
    # the job reported its last checkpoint long ago, so the work at risk is large either way
    long_ago = {INTERVAL: "3600", REQUEST: "5", REQUESTED_AT: A.rfc3339(NOW - 30), "ftmoe.io/checkpoint-at": str(NOW - 3000)}
    waiting = [pod("a0", "n0", **long_ago)]
    updates = plan_jobs(CP, waiting, {"n0": 0.9}, {}, 300, 0.6, NOW)
    assert not any(u.requested for u in updates)
    handled = [pod("a0", "n0", **long_ago, **{ACK: "5"})]
    assert any(u.requested for u in plan_jobs(CP, handled, {"n0": 0.9}, {}, 300, 0.6, NOW))
