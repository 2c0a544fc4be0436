"""Fake node manifests that kwok keeps Ready, shaped like the FT-MoE paper's hosts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

ZONES = ("zone-a", "zone-b", "zone-c")
# kwokctl's kwok controller manages exactly the nodes that carry this annotation.
KWOK_ANNOTATION = "kwok.x-k8s.io/node"


@dataclass(frozen=True)
class NodeShape:
    """One host type. The paper uses 8 hosts with 4 GB and 8 with 8 GB of memory."""

    instance_type: str
    cpu: str
    memory: str
    ephemeral_storage: str
    pods: int = 110


SMALL = NodeShape("ftmoe.sim-4g", cpu="2", memory="4Gi", ephemeral_storage="50Gi")
LARGE = NodeShape("ftmoe.sim-8g", cpu="4", memory="8Gi", ephemeral_storage="100Gi")


def node_name(index: int) -> str:
    return f"node-{index}"


def shape_for(index: int, count: int) -> NodeShape:
    """The first half of the nodes are small, the rest large, as in the paper."""
    return SMALL if index < count // 2 else LARGE


def node_manifest(index: int, count: int) -> dict[str, Any]:
    shape = shape_for(index, count)
    name = node_name(index)
    resources = {"cpu": shape.cpu, "memory": shape.memory, "ephemeral-storage": shape.ephemeral_storage, "pods": str(shape.pods)}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {KWOK_ANNOTATION: "fake"},  # no ttl: kube-controller-manager owns that annotation
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "node.kubernetes.io/instance-type": shape.instance_type,
                "topology.kubernetes.io/zone": ZONES[index % len(ZONES)],
                "type": "kwok",
            },
        },
        "spec": {},
        "status": {"allocatable": dict(resources), "capacity": dict(resources)},
    }


def node_manifests(count: int) -> list[dict[str, Any]]:
    if count < 1:
        raise ValueError(f"--nodes must be at least 1, got {count}")
    return [node_manifest(i, count) for i in range(count)]
