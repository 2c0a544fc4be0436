"""The decision's data: what is known about each node (``NodeFacts``) and what to do
(``Plan`` of ``Action`` and ``Blocked``), shared by decisions.py and remediation_plan.py."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ftmoe.operator.costs import Costed, NodeLoad

CORDON, DRAIN, FORCE_DRAIN, UNCORDON = "cordon", "drain", "force-drain", "uncordon"
REMEDIATE, END_REMEDIATION = "remediate", "end-remediation"


@dataclass(frozen=True)
class NodeFacts:
    """What the operator knows about one selected node, read from the cluster and the model."""

    name: str
    risk: float | None  # None: no complete, fresh metric window this interval
    ready: bool = True
    unschedulable: bool = False
    cordoned_by: str | None = None
    excluded: bool = False
    pressure: bool = False  # a Memory/Disk/PID pressure condition is True
    risk_since: float | None = None
    healthy_since: float | None = None
    drain_started: float | None = None
    drain_state: str | None = None  # draining | done | timed-out
    cordon_history: tuple[float, ...] = ()
    load: NodeLoad = NodeLoad()  # for the cost model
    maintenance: str | None = None  # another controller is working on the node: why (a taint or label)
    fault_arrived: bool = False  # a condition from learning.labels is True
    cordoned_at: float | None = None
    remediation_step: int | None = None  # the escalation step under way, None when not handed over
    remediation_started: float | None = None
    remediation_gave_up: bool = False


@dataclass(frozen=True)
class Action:
    node: str
    kind: str  # cordon | drain | force-drain | uncordon
    reason: str  # CamelCase, for events and metrics
    message: str
    dry_run: bool = False
    step: int = 0  # for remediate: which template of spec.remediation.templates


@dataclass(frozen=True)
class Blocked:
    node: str
    kind: str
    reason: str  # BudgetExhausted | StormBreakerTripped | Escalated | DrainTimedOut
    message: str


@dataclass(frozen=True)
class Marks:
    risk_since: float | None
    healthy_since: float | None


@dataclass
class Plan:
    actions: list[Action] = field(default_factory=list)
    blocked: list[Blocked] = field(default_factory=list)
    marks: dict[str, Marks] = field(default_factory=dict)
    at_risk: list[str] = field(default_factory=list)
    storm: bool = False
    unavailable: int = 0
    budget: int = 0
    remediation: tuple[bool, str, str] = (True, "Allowed", "")
    storm_message: str = ""  # why the breaker is open (at-risk count, acted-on count, or a latched trip)
    trip: str | None = None  # a trip rule holds this interval (a latched breaker records it)
    window: tuple[bool, str, str] = (True, "", "")  # spec.schedule: (allowed, reason, message)
    remediating: int = 0  # selected nodes with a remediation in flight
    costs: dict[str, tuple[Costed, list[Costed]]] = field(default_factory=dict)  # node -> (chosen, candidates)
    _by_node: dict[str, tuple[list[Action], list[Blocked]]] = field(default_factory=dict, init=False, repr=False, compare=False)
    _indexed_at: tuple[int, int] = field(default=(-1, -1), init=False, repr=False, compare=False)

    def for_node(self, node: str) -> tuple[list[Action], list[Blocked]]:
        """The node's actions and blocked actions. Every node's decision text and summary ask
        this, so it reads an index (rebuilt when an action was added since): a scan of the
        whole plan per node cost 4 s an interval at 5,000 nodes with 1,000 blocked cordons."""
        if self._indexed_at != (len(self.actions), len(self.blocked)):
            index: dict[str, tuple[list[Action], list[Blocked]]] = {}
            for a in self.actions:
                index.setdefault(a.node, ([], []))[0].append(a)
            for b in self.blocked:
                index.setdefault(b.node, ([], []))[1].append(b)
            self._by_node, self._indexed_at = index, (len(self.actions), len(self.blocked))
        actions, blocked = self._by_node.get(node, ([], []))
        return list(actions), list(blocked)


def usable(risk: float | None) -> bool:
    """A risk the operator may act on: present and a number in [0, 1] (NaN is not healthy)."""
    return risk is not None and math.isfinite(risk) and 0.0 <= risk <= 1.0
