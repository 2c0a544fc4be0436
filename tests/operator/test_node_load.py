"""The cost model's view of a node: a training pod's loss is its whole gang's."""

from __future__ import annotations

from typing import Any

from ftmoe.operator.migrations import MigrationTracker
from ftmoe.operator.node_load import gang_sizes, node_loads
from ftmoe.operator.policy import PolicySpec

NOW = 1_767_225_600.0


def node(name: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "spec": {},
        "status": {"allocatable": {"cpu": "8"}, "conditions": [{"type": "Ready", "status": "True"}]},
    }


def pod(name: str, node_name: str, job: str | None, training: bool = True) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": name,
        "namespace": "train",
        "labels": {"ftmoe.io/training": "true"} if training else {},
        "annotations": {"ftmoe.io/checkpoint-at": str(NOW - 900)},
        "ownerReferences": [{"kind": "Job", "name": job, "uid": f"uid-{job}", "controller": True}] if job else [],
    }
    return {"metadata": meta, "spec": {"nodeName": node_name, "containers": [{"name": "c"}]}, "status": {"phase": "Running"}}


def spec() -> PolicySpec:
    return PolicySpec.from_dict(
        {
            "prometheus": {"url": "http://p"},
            "costModel": {},
            "checkpointing": {"podSelector": {"matchLabels": {"ftmoe.io/training": "true"}}, "cost": "60s"},
        }
    )


def test_a_training_pods_work_at_risk_and_checkpoint_cost_are_its_gangs() -> None:
    pods = [pod(f"llm-{i}", f"n{i}", "llm") for i in range(8)] + [pod("solo", "n8", "solo")]
    nodes = {f"n{i}": node(f"n{i}") for i in range(9)}
    loads = node_loads(nodes, pods, spec(), MigrationTracker(), NOW)
    assert gang_sizes(pods)["uid-llm"] == 8
    one = loads["n8"]  # a job of one pod
    member = loads["n0"]
    assert one.training_pods == member.training_pods == 1
    assert one.work_at_risk > 0 and member.work_at_risk == 8 * one.work_at_risk
    assert one.checkpoint_cost == 60 and member.checkpoint_cost == 8 * 60


def test_finished_pods_and_pods_without_a_controller_count_alone() -> None:
    done = pod("old", "n1", "llm")
    done["status"]["phase"] = "Succeeded"
    pods = [pod("a", "n0", "llm"), done, pod("bare", "n2", None)]
    assert gang_sizes(pods) == {"uid-llm": 1}
