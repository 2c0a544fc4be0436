"""The kubernetes regime: node faults with the consequences Kubernetes gives them, and what a
remediation policy's actions cost in the same world. The paper regime (engine.py) stays
beside it; this one answers "does acting on predictions pay on a real cluster".

The world, in seconds (the timings in kube_costs.KubeTimings):

- A GPU fleet: gangs of ``gang_nodes`` nodes each run one training job that checkpoints every
  ``checkpoint_interval``; the rest are spares. Every node also runs ``pods_per_node``
  service pods: single-replica Deployments, 3-replica Deployments and 3-replica StatefulSets,
  replicas on distinct nodes, the replicated ones under a PDB of maxUnavailable 1.
- Faults (drawn per node at InfiniteHBD's rate, class mix and repair times):
  * node lost: the node dies. Its pods are unavailable at once but stay bound to it; the
    node controller marks it unreachable after the grace period, the taint manager deletes
    its pods when the default toleration runs out, and Deployments and Jobs recreate them.
    StatefulSet pods are not recreated until the node is fenced, deleted or repaired. A
    training job crashes and loses its work since the last checkpoint, and its gang waits
    for a replacement node, then restarts.
  * pressure: the kubelet evicts every pod at once (no PDB, no grace); they start
    elsewhere; the node takes no new pods until repaired.
  * degraded: the node stays Ready but slow: a training job with a member there runs at
    ``1 - straggler_slowdown`` of its speed; a health condition shows after
    ``degraded_visible_after``.
- A planned drain of a live node is graceful: a replicated pod is evicted only when its
  siblings are all ready (the PDB), a single-replica pod is down while its replacement starts,
  and a training member checkpoints first, so its gang loses the checkpoint and the restart,
  not its work.

A reactive peer (``ReactivePeer``) acts on conditions with its documented delays; a
predictive policy is called every interval with the nodes' risk and conditions and returns
actions. Each run reports pod downtime, service downtime (no replica ready), lost GPU-hours,
evictions and false drains, each per 100 node-days.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ftmoe.simulator.kube_costs import DEGRADED, NODE_LOST, PRESSURE, FaultStats, KubeTimings

SINGLE, REPLICATED, STATEFUL = range(3)


@dataclass(frozen=True)
class FleetConfig:
    nodes: int = 100
    days: float = 365.0
    seed: int = 0
    interval_seconds: float = 300.0  # one decision per interval (the replayed scores' step)
    predictable_share: float = 0.4  # faults whose lead-up the risk replays (an assumption: sweep it)
    pods_per_node: int = 10
    single_replica_share: float = 0.2  # of service pods
    stateful_share: float = 0.1  # of service pods
    replicas: int = 3
    gang_nodes: int = 8
    gpus_per_node: int = 8
    spare_share: float = 0.05
    checkpoint_interval: float = 1800.0
    straggler_slowdown: float = 0.5
    degraded_visible_after: float = 600.0
    false_drain_horizon: float = 7200.0  # a drain with no fault on its node within this is false
    timings: KubeTimings = field(default_factory=KubeTimings)

    @property
    def intervals(self) -> int:
        return int(self.days * 86400 / self.interval_seconds)


@dataclass(frozen=True)
class Fault:
    node: int
    onset: float
    end: float
    kind: str
    predictable: bool


def draw_faults(config: FleetConfig, stats: FaultStats, rng: np.random.Generator) -> list[Fault]:
    """Faults at the fleet's real rate, one at a time per node, onsets on interval boundaries."""
    step = config.interval_seconds
    count = rng.poisson(stats.per_node_day * config.nodes * config.days)
    kinds = list(stats.class_shares)
    shares = np.array([stats.class_shares[k] for k in kinds])
    raw = sorted(
        zip(rng.integers(0, config.nodes, count), rng.integers(1, config.intervals, count), strict=True), key=lambda x: (x[0], x[1])
    )
    faults: list[Fault] = []
    busy_until = np.zeros(config.nodes)
    for node, k in raw:
        onset = float(k) * step
        if onset < busy_until[node]:
            continue  # the node is still down from its last fault
        repair = float(rng.choice(stats.repair_seconds))
        kind = kinds[int(rng.choice(len(kinds), p=shares / shares.sum()))]
        faults.append(Fault(int(node), onset, onset + max(repair, step), kind, bool(rng.random() < config.predictable_share)))
        busy_until[node] = onset + max(repair, step)
    return sorted(faults, key=lambda f: f.onset)


@dataclass(frozen=True)
class ReactivePeer:
    """A tool that acts after a node condition shows, as documented by its project.

    on: conditions it watches (NotReady, Pressure, Degraded); after: how long the condition
    must last; action: "fence" (delete every pod, StatefulSets included, after ``extra``
    seconds), "drain" (cordon and evict; on a NotReady node that deletes Deployment and Job
    pods, StatefulSet pods stay Terminating), "replace" (delete the node, all its pods go, a
    new node is Ready after provisioning); max_share: at most this share of nodes acted on at
    once; min_healthy: act only while this share of nodes is healthy; buffer: seconds between
    two of its actions."""

    name: str
    on: tuple[str, ...]
    after: float
    action: str
    extra: float = 0.0
    max_share: float = 1.0
    min_healthy: float = 0.0
    buffer: float = 0.0


@dataclass
class View:
    """What a predictive policy sees at the start of an interval."""

    t: float
    interval: int
    risk: np.ndarray  # [nodes], NaN where a node sends no metrics
    ready: np.ndarray  # [nodes] bool
    pressure: np.ndarray  # [nodes] bool
    cordoned: np.ndarray  # [nodes] bool, cordoned by the policy
    pods: np.ndarray  # [nodes] service pods still on the node
    training: np.ndarray  # [nodes] bool, a training job member runs there
    since_checkpoint: np.ndarray  # [nodes] seconds of training work not yet checkpointed (0 when none)


PolicyFn = Callable[[View], list[tuple[str, int]]]  # ("cordon" | "drain" | "uncordon", node)


@dataclass
class Job:
    members: set[int]
    running: bool = True
    origin: float = 0.0  # when it last started (checkpoints at origin + k * interval)
    stopped_at: float = 0.0
    need: int = 0  # replacement nodes it waits for
    bound_down: set[int] = field(default_factory=set)  # dead members whose pods are still bound
    slow: set[int] = field(default_factory=set)  # degraded members
    slow_since: float = 0.0


class KubernetesFleet:
    def __init__(self, config: FleetConfig, faults: list[Fault], risk: np.ndarray | None = None, peer: ReactivePeer | None = None) -> None:
        self.c = config
        self.t_ = config.timings
        self.faults = faults
        self.risk = risk
        self.peer = peer
        self.rng = np.random.default_rng(config.seed + 7919)
        N = config.nodes
        self.up = np.ones(N, bool)  # not lost (a lost node sends nothing)
        self.ready = np.ones(N, bool)
        self.pressure = np.zeros(N, bool)
        self.degraded = np.zeros(N, bool)
        self.visible = np.zeros(N, bool)  # degraded and its condition shows
        self.cordoned = np.zeros(N, bool)  # by the policy or a peer
        self.drain_pending = np.zeros(N, bool)
        self.drained = np.zeros(N, bool)  # a drain started since the node was last uncordoned
        self.epoch = np.zeros(N, np.int64)  # bumps when a fault ends, so stale events are dropped
        self.peer_acted: set[int] = set()
        self.peer_last = -math.inf
        self._place_pods()
        self._place_jobs()
        self.events: list[tuple[float, int, str, int, int]] = []
        self._seq = 0
        self._fault_of: dict[int, Fault] = {}  # node -> the fault it is in
        self._pending = sorted(faults, key=lambda f: f.onset)
        self.lost_gpu_seconds = 0.0
        self.evictions = 0
        self.drains: list[tuple[float, int]] = []

    # -- placement ------------------------------------------------------------------------------

    def _place_pods(self) -> None:
        c, N = self.c, self.c.nodes
        total = N * c.pods_per_node
        kinds: list[int] = []
        groups: list[int] = []
        nodes: list[int] = []
        g = 0
        n_single = int(total * c.single_replica_share)
        n_state = int(total * c.stateful_share) // c.replicas
        n_repl = (total - n_single - n_state * c.replicas) // c.replicas
        for _ in range(n_single):
            kinds.append(SINGLE)
            groups.append(g)
            nodes.append(int(self.rng.integers(N)))
            g += 1
        for kind, count in ((REPLICATED, n_repl), (STATEFUL, n_state)):
            for _ in range(count):
                for node in self.rng.choice(N, size=c.replicas, replace=False):
                    kinds.append(kind)
                    groups.append(g)
                    nodes.append(int(node))
                g += 1
        self.pod_kind = np.array(kinds, dtype=np.int64)
        self.pod_group = np.array(groups, dtype=np.int64)
        self.pod_node = np.array(nodes, dtype=np.int64)
        self.pod_down = np.full(len(kinds), np.nan)  # unavailable since
        self.down_log: list[list[tuple[float, float]]] = [[] for _ in kinds]
        self.groups = g

    def _place_jobs(self) -> None:
        c, N = self.c, self.c.nodes
        per = c.gang_nodes
        jobs = int(N * (1 - c.spare_share)) // per
        self.job_of = np.full(N, -1)
        self.jobs: list[Job] = []
        for j in range(jobs):
            members = set(range(j * per, (j + 1) * per))
            self.jobs.append(Job(members))
            self.job_of[list(members)] = j
        self.waiting: list[int] = []  # jobs waiting for a node

    @property
    def gang_gpus(self) -> int:
        return self.c.gang_nodes * self.c.gpus_per_node

    # -- events ---------------------------------------------------------------------------------

    def _at(self, t: float, kind: str, node: int, epoch: int) -> None:
        self._seq += 1
        heapq.heappush(self.events, (t, self._seq, kind, node, epoch))

    def _schedulable(self, exclude: int = -1) -> np.ndarray:
        ok = self.up & self.ready & ~self.cordoned & ~self.pressure
        if exclude >= 0:
            ok = ok.copy()
            ok[exclude] = False
        return ok

    def _pod_down(self, p: int, t: float) -> None:
        if np.isnan(self.pod_down[p]):
            self.pod_down[p] = t

    def _pod_moved(self, p: int, t: float, src: int, wait: float = 0.0) -> None:
        """Pod p is deleted at t and recreated on another node ``wait`` seconds later (a
        StatefulSet pod keeps its name, so the old one must be gone first), Ready after start-up."""
        ok = np.flatnonzero(self._schedulable(src))
        # Drawn from the pod and its move count, not a shared stream: one policy's extra move
        # must not reshuffle where every later pod lands (common random numbers across policies).
        rng = np.random.default_rng((self.c.seed, p, len(self.down_log[p])))
        self.pod_node[p] = int(rng.choice(ok)) if ok.size else src
        self._pod_down(p, t)
        self.down_log[p].append((float(self.pod_down[p]), t + wait + self.t_.pod_startup))
        self.pod_down[p] = np.nan

    def _release(self, node: int, t: float, kinds: tuple[int, ...], job: bool) -> None:
        """The pods of these kinds still bound to a dead node are deleted now and recreated."""
        for p in np.flatnonzero((self.pod_node == node) & np.isin(self.pod_kind, kinds)):
            if not np.isnan(self.pod_down[p]):
                self._pod_moved(int(p), t, node)
        j = int(self.job_of[node])
        if job and j >= 0 and node in self.jobs[j].bound_down:
            self.jobs[j].bound_down.discard(node)
            self._leave(j, node, t)

    # -- training jobs --------------------------------------------------------------------------

    def _accrue_slow(self, job: Job, t: float) -> None:
        if job.slow and job.running:
            self.lost_gpu_seconds += self.gang_gpus * self.c.straggler_slowdown * max(0.0, t - max(job.slow_since, job.origin))
        job.slow_since = t

    def _stop(self, j: int, t: float, lose_work: bool) -> None:
        job = self.jobs[j]
        if not job.running:
            return
        self._accrue_slow(job, t)
        if t < job.origin:  # it was still restarting: that restart was counted up to origin
            self.lost_gpu_seconds -= self.gang_gpus * (job.origin - t)
        elif lose_work:
            self.lost_gpu_seconds += self.gang_gpus * ((t - job.origin) % self.c.checkpoint_interval)
        job.running = False
        job.stopped_at = t

    def _leave(self, j: int, node: int, t: float) -> None:
        job = self.jobs[j]
        job.members.discard(node)
        job.slow.discard(node)
        self.job_of[node] = -1
        job.need += 1
        if j not in self.waiting:
            self.waiting.append(j)
        self._fill(t)

    def _fill(self, t: float) -> None:
        """Give waiting jobs free nodes, oldest first; a complete gang restarts."""
        for j in list(self.waiting):
            job = self.jobs[j]
            free = np.flatnonzero(self._schedulable() & (self.job_of < 0) & ~self.visible)
            for node in free[: job.need]:
                job.members.add(int(node))
                self.job_of[node] = j
                job.need -= 1
            if job.need == 0:
                self.waiting.remove(j)
                self._maybe_resume(j, t)

    def _maybe_resume(self, j: int, t: float) -> None:
        job = self.jobs[j]
        if job.running or job.need or job.bound_down:
            return
        job.origin = t + self.t_.training_restart
        self.lost_gpu_seconds += self.gang_gpus * (job.origin - job.stopped_at)
        job.running = True
        job.slow = {n for n in job.members if self.degraded[n]}
        job.slow_since = job.origin

    def since_checkpoint(self, t: float) -> np.ndarray:
        out = np.zeros(self.c.nodes)
        for j, job in enumerate(self.jobs):
            if job.running and t >= job.origin:
                out[self.job_of == j] = (t - job.origin) % self.c.checkpoint_interval
        return out

    # -- faults ---------------------------------------------------------------------------------

    def _onset(self, f: Fault) -> None:
        n, t = f.node, f.onset
        self._fault_of[n] = f
        on_node = np.flatnonzero(self.pod_node == n)
        j = int(self.job_of[n])
        if f.kind == NODE_LOST:
            self.up[n] = False
            for p in on_node:
                self._pod_down(int(p), t)
            if j >= 0:
                self._stop(j, t, lose_work=True)
                self.jobs[j].bound_down.add(n)
            self._at(t + self.t_.node_monitor_grace, "not-ready", n, int(self.epoch[n]))
            self._at(t + self.t_.taint_eviction, "taint-eviction", n, int(self.epoch[n]))
        elif f.kind == PRESSURE:
            self.pressure[n] = True
            for p in on_node:
                self._pod_moved(int(p), t, n)  # the kubelet evicts: no PDB, no grace
            if j >= 0:
                self._stop(j, t, lose_work=True)
                self._leave(j, n, t)
            self._peer_condition("Pressure", n, t)
        elif f.kind == DEGRADED:
            self.degraded[n] = True
            if j >= 0:
                self._accrue_slow(self.jobs[j], t)
                self.jobs[j].slow.add(n)
            self._at(t + self.c.degraded_visible_after, "visible", n, int(self.epoch[n]))
        self._at(f.end, "repair", n, int(self.epoch[n]))

    def _repair(self, n: int, t: float) -> None:
        self._fault_of.pop(n, None)
        self.epoch[n] += 1
        for p in np.flatnonzero((self.pod_node == n) & ~np.isnan(self.pod_down)):
            self.down_log[p].append((float(self.pod_down[p]), t + self.t_.pod_startup))  # the kubelet restarts them
            self.pod_down[p] = np.nan
        j = int(self.job_of[n])
        if j >= 0:
            job = self.jobs[j]
            self._accrue_slow(job, t)
            job.slow.discard(n)
            if n in job.bound_down:
                job.bound_down.discard(n)
                self._maybe_resume(j, t)
        self.up[n] = self.ready[n] = True
        self.pressure[n] = self.degraded[n] = self.visible[n] = False
        self.peer_acted.discard(n)
        if self.peer is not None and self.peer.action == "drain":
            self.cordoned[n] = self.drained[n] = False  # draino-style tools uncordon a node whose condition cleared
        self._fill(t)

    # -- peers ----------------------------------------------------------------------------------

    def _peer_condition(self, condition: str, n: int, t: float) -> None:
        if self.peer is not None and condition in self.peer.on:
            self._at(t + self.peer.after, "peer", n, int(self.epoch[n]))

    def _peer_act(self, n: int, t: float) -> None:
        peer = self.peer
        assert peer is not None
        N = self.c.nodes
        healthy = float(np.mean(self.up & self.ready & ~self.pressure))
        if len(self.peer_acted) >= max(1, int(peer.max_share * N)) or healthy < peer.min_healthy or n in self.peer_acted:
            return
        start = max(t, self.peer_last + peer.buffer)
        if start > t:
            self._at(start, "peer", n, int(self.epoch[n]))
            return
        self.peer_acted.add(n)
        self.peer_last = t
        if peer.action == "fence":
            self._at(t + peer.extra, "fenced", n, int(self.epoch[n]))
        elif peer.action == "drain":
            self.drain(n, t)
        elif peer.action == "replace":
            self._release(n, t, (SINGLE, REPLICATED, STATEFUL), job=True)
            f = self._fault_of.get(n)
            if f is not None:  # the broken node is gone; a new one joins after provisioning
                self._at(t + self.t_.provisioning, "repair", n, int(self.epoch[n]))

    # -- actions --------------------------------------------------------------------------------

    def drain(self, n: int, t: float, force: bool = False) -> None:
        """Cordon n and evict what the PDBs allow; a live training member checkpoints first."""
        if not self.drained[n]:
            self.drains.append((t, n))
        self.drained[n] = self.cordoned[n] = True
        if not self.up[n]:  # an eviction on a dead node: Deployment and Job pods get replaced
            self._release(n, t, (SINGLE, REPLICATED), job=True)
            return
        left = False
        for p in np.flatnonzero(self.pod_node == n):
            siblings = np.flatnonzero((self.pod_group == self.pod_group[p]) & (np.arange(len(self.pod_group)) != p))
            if self.pod_kind[p] != SINGLE and not force and np.isnan(self.pod_down[siblings]).sum() < len(siblings):
                left = True  # the PDB says no: a sibling is down
                continue
            wait = self.t_.termination_grace if self.pod_kind[p] == STATEFUL else 0.0
            self._pod_moved(int(p), t, n, wait)
            self.evictions += 1
        self.drain_pending[n] = left
        j = int(self.job_of[n])
        if j >= 0:
            job = self.jobs[j]
            if job.running and t >= job.origin:
                self.lost_gpu_seconds += self.gang_gpus * self.t_.checkpoint_cost
            self._stop(j, t, lose_work=False)
            self._leave(j, n, t)

    def apply(self, actions: list[tuple[str, int]], t: float) -> None:
        for kind, n in actions:
            if kind == "cordon":
                self.cordoned[n] = True
            elif kind in ("drain", "force-drain"):
                self.drain(n, t, force=kind == "force-drain")
            elif kind == "uncordon":
                self.cordoned[n] = self.drained[n] = self.drain_pending[n] = False
                self._fill(t)

    # -- the run --------------------------------------------------------------------------------

    def _handle(self, t: float, kind: str, n: int, epoch: int) -> None:
        if epoch != self.epoch[n]:
            return  # the fault it belonged to is over
        if kind == "not-ready":
            self.ready[n] = False
            self._peer_condition("NotReady", n, t)
        elif kind == "taint-eviction":
            self._release(n, t, (SINGLE, REPLICATED), job=True)
        elif kind == "visible":
            self.visible[n] = True
            self._peer_condition("Degraded", n, t)
        elif kind == "fenced":
            self._release(n, t, (SINGLE, REPLICATED, STATEFUL), job=True)
        elif kind == "peer":
            self._peer_act(n, t)
        elif kind == "repair":
            self._repair(n, t)

    def _advance(self, until: float) -> None:
        while True:
            nxt_fault = self._pending[0].onset if self._pending else math.inf
            nxt_event = self.events[0][0] if self.events else math.inf
            if min(nxt_fault, nxt_event) > until:
                return
            if nxt_fault <= nxt_event:
                self._onset(self._pending.pop(0))
            else:
                t, _, kind, n, epoch = heapq.heappop(self.events)
                self._handle(t, kind, n, epoch)

    def run(self, policy: PolicyFn | None = None) -> dict[str, float]:
        step = self.c.interval_seconds
        for k in range(self.c.intervals):
            t = k * step
            self._advance(t)
            for n in np.flatnonzero(self.drain_pending):
                self.drain(int(n), t)
            if policy is not None:
                risk = self.risk[k] if self.risk is not None else np.zeros(self.c.nodes)
                view = View(
                    t,
                    k,
                    np.where(self.up, risk, np.nan),
                    self.ready.copy(),
                    self.pressure.copy(),
                    self.cordoned.copy(),
                    np.bincount(self.pod_node, minlength=self.c.nodes),
                    self.job_of >= 0,
                    self.since_checkpoint(t),
                )
                self.apply(policy(view), t)
        end = self.c.intervals * step
        self._advance(end)
        return self.summary(end)

    def summary(self, end: float) -> dict[str, float]:
        for p in np.flatnonzero(~np.isnan(self.pod_down)):
            self.down_log[p].append((float(self.pod_down[p]), end))
        for job in self.jobs:
            if not job.running:
                self.lost_gpu_seconds += self.gang_gpus * (end - job.stopped_at)
            else:
                self._accrue_slow(job, end)
        pod_down = sum(min(b, end) - a for log in self.down_log for a, b in log if b > a)
        service_down = 0.0
        for g in range(self.groups):
            members = np.flatnonzero(self.pod_group == g)
            service_down += all_down([self.down_log[p] for p in members], end)
        onsets: dict[int, list[float]] = {}
        for f in self.faults:
            onsets.setdefault(f.node, []).append(f.onset)
        false = sum(1 for t, n in self.drains if not any(t <= o <= t + self.c.false_drain_horizon for o in onsets.get(n, [])) and t < end)
        per = 100.0 / (self.c.nodes * self.c.days)  # per 100 node-days
        return {
            "pod_downtime": pod_down / 3600 * per,
            "service_downtime": service_down / 3600 * per,
            "lost_gpu_hours": self.lost_gpu_seconds / 3600 * per,
            "evictions": self.evictions * per,
            "drains": len(self.drains) * per,
            "false_drains_per_100_node_days": false * per,
            "faults": float(len(self.faults)),
        }


def all_down(logs: list[list[tuple[float, float]]], end: float) -> float:
    """Seconds during which every replica was down: the measure of the intersection of the
    replicas' down intervals."""
    if not logs or any(not log for log in logs):
        return 0.0
    common = merge(logs[0], end)
    for log in logs[1:]:
        other = merge(log, end)
        out = []
        i = j = 0
        while i < len(common) and j < len(other):
            lo, hi = max(common[i][0], other[j][0]), min(common[i][1], other[j][1])
            if lo < hi:
                out.append((lo, hi))
            if common[i][1] < other[j][1]:
                i += 1
            else:
                j += 1
        common = out
    return sum(b - a for a, b in common)


def merge(log: list[tuple[float, float]], end: float) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    for a, b in sorted((a, min(b, end)) for a, b in log if min(b, end) > a):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out
