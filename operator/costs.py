"""The second seed's cost model for choosing an action: L = l1 ResourceCost + l2 FaultImpact.

For one node at risk p, each candidate action a has

    ResourceCost(a)  what acting costs now, in pod-seconds of unavailability: every pod it
                     moves is down while it restarts elsewhere (``restart_seconds``), a
                     training pod that checkpoints first stalls for its checkpoint cost C,
                     and capacity taken out of service costs what it would have served
                     (``capacity_seconds`` per core cordoned); moving more CPU than the
                     healthy nodes have free is not possible at all;
    FaultImpact(a)   p x what is lost if the node fails with what is left on it: each pod
                     down for ``fault_seconds``, each training pod's work since its last
                     checkpoint, and new pods the node would still receive.

and the cheapest action wins. Doing nothing (annotate) is always a candidate, so the
model never picks an action it rates costlier than doing nothing. Pure functions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ftmoe.operator.api.policy_types import CostWeights  # spec.costModel, declared once with the policy's fields

ANNOTATE, CORDON, EVICT, CHECKPOINT_EVICT = "annotate", "cordon", "evict", "checkpoint-then-evict"


@dataclass(frozen=True)
class NodeLoad:
    """What is on a node, for the cost model."""

    pods: int = 0  # evictable pods
    training_pods: int = 0  # of which follow the checkpoint contract
    cpu_requests: float = 0.0  # cores requested by the evictable pods
    cores: float = 0.0  # the node's allocatable cores
    work_at_risk: float = 0.0  # seconds of training since the last checkpoint (per training pod)
    checkpoint_cost: float = 0.0  # C per training pod
    expected_arrivals: float = 0.0  # pods the scheduler would place here within the horizon
    free_cores_elsewhere: float = math.inf  # unrequested cores on the other schedulable nodes


@dataclass(frozen=True)
class Costed:
    action: str
    resource_cost: float
    fault_impact: float
    total: float

    def summary(self) -> str:
        return f"{self.action}: L={self.total:.0f} (resource {self.resource_cost:.0f} + impact {self.fault_impact:.0f} pod-s)"


def candidates(p: float, load: NodeLoad, w: CostWeights, allowed: tuple[str, ...]) -> list[Costed]:
    lost_if_fail = load.pods * w.fault_seconds + load.training_pods * load.work_at_risk
    out = [Costed(ANNOTATE, 0.0, p * (lost_if_fail + load.expected_arrivals * w.fault_seconds), 0.0)]
    capacity = load.cores * w.capacity_seconds
    if CORDON in allowed:
        out.append(Costed(CORDON, capacity, p * lost_if_fail, 0.0))
    movable = load.cpu_requests <= load.free_cores_elsewhere
    if EVICT in allowed and movable:
        # Training pods evicted without a checkpoint lose their work whether or not the node fails.
        out.append(Costed(EVICT, capacity + load.pods * w.restart_seconds + load.training_pods * load.work_at_risk, 0.0, 0.0))
    if CHECKPOINT_EVICT in allowed and movable and load.training_pods:
        out.append(Costed(CHECKPOINT_EVICT, capacity + load.pods * w.restart_seconds + load.training_pods * load.checkpoint_cost, 0.0, 0.0))
    return [Costed(c.action, c.resource_cost, c.fault_impact, w.resource * c.resource_cost + w.impact * c.fault_impact) for c in out]


def choose(p: float, load: NodeLoad, w: CostWeights, allowed: tuple[str, ...]) -> tuple[Costed, list[Costed]]:
    """The cheapest allowed action (ties go to the least disruptive), and all candidates."""
    order = [ANNOTATE, CORDON, EVICT, CHECKPOINT_EVICT]
    options = candidates(p, load, w, allowed)
    best = min(options, key=lambda c: (c.total, order.index(c.action)))
    return best, options
