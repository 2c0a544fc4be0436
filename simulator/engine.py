"""The discrete-interval cluster simulator.

Containers replay Bitbrains VMs on H hosts; a scheduler places and migrates them; the
fault process (faults.py) adds root causes whose effects show in the host metrics before
the fault; faults hurt the containers on the host. Each interval yields one row of host
features, one row of labels, the interval's migrations and the QoS it delivered.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np

from ftmoe.contract.features import FEATURE_NAMES
from ftmoe.simulator.config import CPU, DISK, MEMORY, SimConfig
from ftmoe.simulator.faults import FAULT, PRECURSOR, FaultProcess
from ftmoe.simulator.scheduler import HostView, LeastLoaded, Scheduler
from ftmoe.simulator.traces import TracePool

F = {name: i for i, name in enumerate(FEATURE_NAMES)}
BASE_LATENCY_S = 0.004
MIGRATION_DOWNTIME = 0.1  # share of an interval a migrated container is unavailable


@dataclass
class Action:
    """A remediation step, applied at the start of the next interval.

    kind: "cordon" (no new containers), "drain" (cordon and move every container off),
    "uncordon", or "migrate" (move ``container`` to ``target``, or wherever the
    scheduler says when target is -1).
    """

    kind: str
    host: int = -1
    container: int = -1
    target: int = -1


@dataclass
class Observation:
    """What a remediation policy sees after interval t: never the labels."""

    t: int
    features: np.ndarray  # [H, F]
    migrations: np.ndarray  # [M, 3] of this interval
    cordoned: np.ndarray  # [H] bool
    containers_per_host: np.ndarray  # [H]
    # Faults already visible, as node conditions show them (MemoryPressure, ...): what a
    # reactive tool acts on. It is the fault under way, never the future.
    visible_faults: np.ndarray | None = None  # [H] bool


Policy = Callable[[Observation], list[Action]]


@dataclass
class QoS:
    """Quality of service over a run, as in the FT-MoE paper's Figure 2."""

    container_intervals: int = 0
    containers_hit: int = 0  # containers on a host when one of its faults struck
    sla_violations: int = 0  # container-intervals with response time over the SLA
    response_time_ms_sum: float = 0.0
    downtime_container_intervals: float = 0.0  # unavailable: killed, on a failed host, migrating
    migrations: int = 0
    cpu_utilisation_sum: float = 0.0
    memory_utilisation_sum: float = 0.0
    energy_kwh: float = 0.0
    intervals: int = 0
    hosts: int = 0
    interval_seconds: int = 300
    _hit: set[tuple[int, int]] = field(default_factory=set, repr=False)

    def summary(self) -> dict[str, float]:
        ci = max(self.container_intervals, 1)
        hi = max(self.intervals * self.hosts, 1)
        return {
            "containers_hit_by_faults": self.containers_hit,
            "sla_violations": self.sla_violations,
            "sla_violation_rate": self.sla_violations / ci,
            "avg_response_time_ms": self.response_time_ms_sum / ci,
            "downtime_pod_minutes": self.downtime_container_intervals * self.interval_seconds / 60,
            "migrations": self.migrations,
            "avg_cpu_utilisation": self.cpu_utilisation_sum / hi,
            "avg_ram_utilisation": self.memory_utilisation_sum / hi,
            "energy_kwh": self.energy_kwh,
            "container_intervals": self.container_intervals,
        }


class Simulator:
    def __init__(self, config: SimConfig, pool: TracePool, scheduler: Scheduler | None = None):
        self.config = config
        self.pool = pool
        self.rng = np.random.default_rng(config.seed)
        self.scheduler = scheduler or LeastLoaded(config.overload_threshold)
        types = config.host_types()
        H = config.hosts
        self.H = H
        self.cores = np.array([h.cores for h in types], dtype=float)
        self.cpu_capacity = np.array([h.cores * h.mhz_per_core for h in types])
        self.memory_capacity = np.array([h.memory_bytes for h in types])
        self.disk_capacity = np.array([h.disk_bytes for h in types])
        self.disk_bandwidth = np.array([h.disk_bandwidth_bps for h in types])
        self.net_bandwidth = np.array([h.network_bandwidth_bps for h in types])
        self.idle_watts = np.array([h.idle_watts for h in types])
        self.max_watts = np.array([h.max_watts for h in types])
        self.base_memory = self.memory_capacity * self.rng.uniform(*config.base_memory_fraction, H)
        self.base_disk = self.disk_capacity * self.rng.uniform(*config.base_disk_fraction, H)
        self.cordoned = np.zeros(H, dtype=bool)
        self.faults = FaultProcess(H, config.faults, self.rng)
        self.over_limit = np.zeros(H, dtype=bool)
        # How far each host's cause has built up this interval; drawn once per interval.
        self._progress = np.zeros(H)
        # Containers: parallel growable arrays, indexed by container id.
        cap = 1024
        self.c_vm = np.zeros(cap, dtype=np.int64)
        self.c_offset = np.zeros(cap, dtype=np.int64)
        self.c_host = np.full(cap, -1, dtype=np.int64)
        self.c_start = np.zeros(cap, dtype=np.int64)
        self.c_end = np.zeros(cap, dtype=np.int64)
        self.c_alive = np.zeros(cap, dtype=bool)
        self.c_down = np.zeros(cap)  # unavailable share of the current interval
        self.n_containers = 0
        self.t = 0
        self.pending: list[Action] = []
        self.qos = QoS(hosts=H, interval_seconds=config.interval_seconds)
        self.migration_log: list[tuple[int, int, int]] = []
        self._arrival_scale = H / 16.0
        view = self._view()
        for _ in range(int(round(config.initial_containers_per_host * H))):
            self._spawn(view)

    # -- containers -----------------------------------------------------------------------

    def _grow(self) -> None:
        cap = len(self.c_vm) * 2
        for name in ("c_vm", "c_offset", "c_host", "c_start", "c_end", "c_alive", "c_down"):
            old = getattr(self, name)
            new = np.zeros(cap, dtype=old.dtype)
            if name == "c_host":
                new[:] = -1
            new[: len(old)] = old
            setattr(self, name, new)

    def _demand(self, ids: np.ndarray) -> np.ndarray:
        """Usage of containers ``ids`` now: [n, 6] in TracePool.USAGE units, scaled."""
        step = self.c_offset[ids] + (self.t - self.c_start[ids])
        u = self.pool.at(self.c_vm[ids], step).copy()
        u[:, 0] *= self.config.cpu_scale
        u[:, 1] *= self.config.memory_scale
        u[:, 2:4] *= self.config.io_scale
        return u

    def _spawn(self, view: HostView) -> None:
        """Place one new container; ``view`` is updated in place so that a burst of
        arrivals sees the load of the ones placed before it."""
        if self.n_containers == len(self.c_vm):
            self._grow()
        c = self.n_containers
        self.c_vm[c] = self.rng.integers(len(self.pool))
        self.c_offset[c] = self.rng.integers(self.pool.lengths[self.c_vm[c]])
        self.c_start[c] = self.t
        self.c_end[c] = self.t + 1 + self.rng.geometric(1.0 / self.config.lifetime_mean)
        demand = self._demand(np.array([c]))[0]
        host = self.scheduler.place(view, float(demand[0]), float(demand[1]))
        if host < 0:
            return  # the cluster is full: the request is dropped
        view.cpu_used[host] += demand[0]
        view.memory_used[host] += demand[1]
        self.c_host[c] = host
        self.c_alive[c] = True
        self.n_containers += 1

    def alive_ids(self) -> np.ndarray:
        return np.flatnonzero(self.c_alive[: self.n_containers])

    def containers_by_host(self, ids: np.ndarray | None = None) -> dict[int, np.ndarray]:
        ids = self.alive_ids() if ids is None else ids
        hosts = self.c_host[ids]
        order = np.argsort(hosts, kind="stable")
        ids, hosts = ids[order], hosts[order]
        bounds = np.flatnonzero(np.diff(hosts)) + 1
        return {int(g[0]): i for g, i in zip(np.split(hosts, bounds), np.split(ids, bounds)) if g.size}

    # -- host aggregates -------------------------------------------------------------------

    def _effective_cpu_capacity(self, progress: np.ndarray) -> np.ndarray:
        ratio = self.frequency_ratio(progress)
        return self.cpu_capacity * ratio

    def frequency_ratio(self, progress: np.ndarray) -> np.ndarray:
        ratio = np.ones(self.H)
        thermal = self._cause_mask("cpu-thermal-throttling")
        ratio[thermal] = 1.0 - 0.55 * progress[thermal]
        return ratio

    def _cause_mask(self, name: str) -> np.ndarray:
        idx = [i for i, c in enumerate(self.faults.causes) if c.name == name]
        active = (self.faults.phase == PRECURSOR) | (self.faults.phase == FAULT)
        return active & np.isin(self.faults.cause, idx)

    def _view(self, demand: np.ndarray | None = None, ids: np.ndarray | None = None) -> HostView:
        if demand is None or ids is None:
            ids = self.alive_ids()
            demand = self._demand(ids) if ids.size else np.zeros((0, 6))
        cpu_used = np.bincount(self.c_host[ids], weights=demand[:, 0], minlength=self.H) if ids.size else np.zeros(self.H)
        mem_used = self.base_memory + (np.bincount(self.c_host[ids], weights=demand[:, 1], minlength=self.H) if ids.size else 0)
        schedulable = ~self.cordoned & (self.faults.phase != FAULT)
        return HostView(self._effective_cpu_capacity(self._progress), self.memory_capacity.copy(), cpu_used, mem_used, schedulable)

    # -- one interval ----------------------------------------------------------------------

    def _apply_actions(self) -> list[tuple[int, int, int]]:
        moves: list[tuple[int, int, int]] = []
        by_host = None
        for a in self.pending:
            if a.kind in ("cordon", "drain") and 0 <= a.host < self.H:
                self.cordoned[a.host] = True
            if a.kind == "uncordon" and 0 <= a.host < self.H:
                self.cordoned[a.host] = False
        for a in self.pending:
            if a.kind == "drain":
                by_host = by_host or self.containers_by_host()
                for c in by_host.get(a.host, np.array([], dtype=np.int64)):
                    moves.append((int(c), a.host, -1))
            elif a.kind == "migrate" and 0 <= a.container < self.n_containers and self.c_alive[a.container]:
                moves.append((a.container, int(self.c_host[a.container]), a.target))
        self.pending = []
        done: list[tuple[int, int, int]] = []
        if not moves:
            return done
        view = self._view()
        for c, src, target in moves:
            d = self._demand(np.array([c]))[0]
            if target < 0:
                target = self.scheduler.place(view, float(d[0]), float(d[1]))
            if target < 0 or target == src:
                continue
            view.move(src, target, d[0], d[1])
            self._move(c, target)
            done.append((self.t, src, target))
        return done

    def _move(self, c: int, target: int) -> None:
        self.c_host[c] = target
        self.c_down[c] = max(self.c_down[c], MIGRATION_DOWNTIME)

    def step(self, policy: Policy | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Advance one interval; returns (features [H, F], labels [H], migrations [M, 3])."""
        cfg = self.config
        t = self.t
        if cfg.drift is not None and cfg.drift_at is not None and t == cfg.drift_at:
            self.faults.set_config(cfg.drift)
        self.c_down[: self.n_containers] = 0.0
        migrations = self._apply_actions()
        self.faults.advance(t, self.over_limit)
        fault_now = self.faults.phase == FAULT

        self._departures_and_arrivals(t)
        progress = self._progress = self.faults.progress(t)
        ids = self.alive_ids()
        demand = self._demand(ids) if ids.size else np.zeros((0, 6))
        killed = self._oom_victims(fault_now, ids, demand)

        # The scheduler reacts to failed and overloaded hosts.
        view = self._view(demand, ids)
        view.cpu_used += self._extra_cpu(progress, view.cpu_capacity)
        view.memory_used += self._leak_bytes(progress, ids, demand)
        view.schedulable &= ~fault_now
        cpu_of = np.zeros(self.n_containers)
        mem_of = np.zeros(self.n_containers)
        cpu_of[ids], mem_of[ids] = demand[:, 0], demand[:, 1]
        migrations += self._restart(killed, view, cpu_of, mem_of)
        by_host = self.containers_by_host(ids)
        for c, target in self.scheduler.rebalance(view, fault_now, by_host, cpu_of, mem_of, cfg.max_migrations_per_host):
            src = int(self.c_host[c])
            self._move(c, target)
            migrations.append((t, src, target))

        features = self._features(progress, ids, demand, migrations)
        labels = self.faults.labels()
        self._account(ids, features, labels, fault_now)
        self.over_limit = (features[:, F["memory_used_fraction"]] >= 0.985) | (features[:, F["disk_used_fraction"]] >= 0.985)
        mig = np.array(migrations, dtype=np.int32).reshape(-1, 3)
        self.migration_log.extend(migrations)
        self.qos.migrations += len(migrations)
        if policy is not None:
            obs = Observation(t, features, mig, self.cordoned.copy(), features[:, F["running_containers"]].copy(), labels > 0)
            self.pending = list(policy(obs))
        self.t += 1
        return features, labels, mig

    def _departures_and_arrivals(self, t: int) -> None:
        cfg = self.config
        alive = self.alive_ids()
        self.c_alive[alive[self.c_end[alive] <= t]] = False
        arrivals = max(0, int(round(self.rng.normal(cfg.arrivals_mean, cfg.arrivals_std) * self._arrival_scale)))
        if arrivals:
            view = self._view()
            for _ in range(arrivals):
                self._spawn(view)

    def _oom_victims(self, fault_now: np.ndarray, ids: np.ndarray, demand: np.ndarray) -> set[int]:
        """Memory faults kill containers: the OOM killer takes the largest third first."""
        killed: set[int] = set()
        oom_hosts = np.flatnonzero(fault_now & (self.faults.fault_type == MEMORY))
        if oom_hosts.size == 0:
            return killed
        by_host = self.containers_by_host(ids)
        for h in oom_hosts:
            victims = by_host.get(int(h), np.array([], dtype=np.int64))
            if victims.size:
                memory = demand[np.searchsorted(ids, victims), 1]
                killed.update(int(c) for c in victims[np.argsort(-memory)][: max(1, victims.size // 3)])
        return killed

    def _restart(self, killed: set[int], view: HostView, cpu_of: np.ndarray, mem_of: np.ndarray) -> list[tuple[int, int, int]]:
        """Killed containers lose the interval and restart wherever the scheduler finds room."""
        moves = []
        for c in killed:
            h = int(self.c_host[c])
            target = self.scheduler.place(view, float(cpu_of[c]), float(mem_of[c]))
            self.c_down[c] = 1.0
            if target >= 0 and target != h:
                self.c_host[c] = target
                moves.append((self.t, h, target))
                view.move(h, target, cpu_of[c], mem_of[c])
        return moves

    # -- cause effects ---------------------------------------------------------------------

    def _leak_bytes(self, progress: np.ndarray, ids: np.ndarray, demand: np.ndarray) -> np.ndarray:
        """A leak grows until it fills what the workload leaves free. A sudden memory fault
        has the same cause at full strength (progress is 1 during a fault)."""
        leak = np.zeros(self.H)
        mask = self._cause_mask("memory-leak")
        if mask.any():
            used = self.base_memory + (np.bincount(self.c_host[ids], weights=demand[:, 1], minlength=self.H) if ids.size else 0)
            room = np.maximum(self.memory_capacity - used, 0)
            leak[mask] = room[mask] * progress[mask] ** 1.3 * 1.02
        return leak

    def _extra_cpu(self, progress: np.ndarray, capacity: np.ndarray) -> np.ndarray:
        extra = np.zeros(self.H)
        mask = self._cause_mask("cpu-runaway")
        extra[mask] = capacity[mask] * 1.05 * progress[mask] ** 1.5
        return extra

    # -- features and QoS ------------------------------------------------------------------

    def _features(self, progress: np.ndarray, ids: np.ndarray, demand: np.ndarray, migrations: list[tuple[int, int, int]]) -> np.ndarray:
        H, cfg = self.H, self.config
        hosts = self.c_host[ids]

        def per_host(col: int) -> np.ndarray:
            return np.bincount(hosts, weights=demand[:, col], minlength=H) if ids.size else np.zeros(H)

        fault = self.faults.phase == FAULT
        ftype = self.faults.fault_type
        cap_cpu = self._effective_cpu_capacity(progress)
        cpu_demand = per_host(0) + self._extra_cpu(progress, cap_cpu)
        # A CPU fault is sustained saturation whatever its cause.
        cpu_demand = np.where(fault & (ftype == CPU), np.maximum(cpu_demand, cap_cpu * 1.1), cpu_demand)
        mem_used = np.minimum(self.base_memory + per_host(1) + self._leak_bytes(progress, ids, demand), self.memory_capacity)
        mem_frac = mem_used / self.memory_capacity

        disk_used = self.base_disk.copy()
        write = per_host(3)
        fill = self._cause_mask("disk-filling")
        disk_used[fill] += (self.disk_capacity[fill] - self.base_disk[fill]) * progress[fill]
        write[fill] += 20e6 * progress[fill]
        disk_frac = np.minimum(disk_used / self.disk_capacity, 1.0)
        disk_frac = np.where(fault & (ftype == DISK) & fill, np.maximum(disk_frac, 0.995), disk_frac)
        read = per_host(2)
        io_util = (read + write) / self.disk_bandwidth
        sat = self._cause_mask("disk-io-saturation")
        io_util[sat] += progress[sat]
        failing = self._cause_mask("disk-failing-device")
        io_util[failing] += 0.3 * progress[failing]
        swapping = self._cause_mask("memory-swap-storm")  # swap traffic keeps the disk busy
        io_util[swapping] += 0.6 * progress[swapping]
        read[swapping] += 30e6 * progress[swapping]
        io_util = np.clip(io_util, 0.0, 1.0)
        latency = BASE_LATENCY_S / (1.0 - 0.95 * io_util)
        latency[failing] *= np.exp(3.5 * progress[failing])
        latency[fault & (ftype == DISK)] *= 5.0

        n = cfg.metric_noise
        noise = self.rng.standard_normal((H, 8)) * n
        out = np.zeros((H, len(FEATURE_NAMES)), dtype=np.float32)
        out[:, F["cpu_utilisation"]] = np.clip(cpu_demand / cap_cpu + noise[:, 0], 0, 1)
        out[:, F["cpu_frequency_ratio"]] = np.clip(self.frequency_ratio(progress) + noise[:, 1] / 2, 0.2, 1)
        out[:, F["load_per_core"]] = np.maximum(cpu_demand / cap_cpu * (1 + noise[:, 2]), 0)
        out[:, F["memory_used_fraction"]] = np.clip(mem_frac + noise[:, 3] / 2, 0, 1)
        out[:, F["memory_available_bytes"]] = np.maximum(self.memory_capacity * (1 - out[:, F["memory_used_fraction"]]), 0)
        pressure = np.maximum(mem_frac - 0.85, 0) / 0.15
        swap = self._cause_mask("memory-swap-storm")
        storm = np.where(swap, 1500.0 * progress**1.5, 0.0)
        out[:, F["memory_major_faults_per_second"]] = np.maximum(2.0 + 800.0 * pressure**2 + storm + noise[:, 4] * 20, 0)
        out[:, F["disk_used_fraction"]] = np.clip(disk_frac + noise[:, 5] / 4, 0, 1)
        out[:, F["disk_io_utilisation"]] = np.clip(io_util + noise[:, 6], 0, 1)
        out[:, F["disk_io_latency_seconds"]] = latency * np.exp(noise[:, 7])
        out[:, F["disk_read_bytes_per_second"]] = read
        out[:, F["disk_write_bytes_per_second"]] = write
        out[:, F["network_receive_bytes_per_second"]] = per_host(4)
        out[:, F["network_transmit_bytes_per_second"]] = per_host(5)
        out[:, F["running_containers"]] = np.bincount(self.c_host[self.alive_ids()], minlength=H)
        if migrations:
            m = np.array(migrations)
            out[:, F["migrations_in"]] = np.bincount(m[:, 2], minlength=H)
            out[:, F["migrations_out"]] = np.bincount(m[:, 1], minlength=H)
        return out

    def _account(self, ids: np.ndarray, features: np.ndarray, labels: np.ndarray, fault_now: np.ndarray) -> None:
        cfg, q = self.config, self.qos
        ids = self.alive_ids()
        q.intervals += 1
        q.container_intervals += ids.size
        cpu = features[:, F["cpu_utilisation"]].astype(float)
        q.cpu_utilisation_sum += float(cpu.sum())
        q.memory_utilisation_sum += float(features[:, F["memory_used_fraction"]].sum())
        watts = self.idle_watts + (self.max_watts - self.idle_watts) * cpu
        q.energy_kwh += float(watts.sum()) * cfg.interval_seconds / 3.6e6
        if ids.size == 0:
            return
        hosts = self.c_host[ids]
        on_fault = fault_now[hosts]
        for c, h in zip(ids[on_fault], hosts[on_fault]):
            key = (int(c), int(self.faults.record[h]))
            if key not in q._hit:
                q._hit.add(key)
                q.containers_hit += 1
        # Queueing delay grows with utilisation: 10x the base at a saturated host.
        rt = cfg.response_time_ms / (1.0 - 0.9 * np.clip(cpu[hosts], 0, 1))
        rt = np.where(on_fault, rt * 10.0, rt)
        rt = rt * (1 + self.c_down[ids] * 10)
        q.response_time_ms_sum += float(rt.sum())
        q.sla_violations += int(np.sum(rt > cfg.response_time_ms * cfg.sla_factor))
        down = np.maximum(self.c_down[ids], np.where(on_fault, 1.0, 0.0))
        q.downtime_container_intervals += float(down.sum())

    # -- whole runs ------------------------------------------------------------------------

    def run(
        self, intervals: int | None = None, policy: Policy | None = None, progress: Callable[[int], None] | None = None
    ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        for _ in range(intervals if intervals is not None else self.config.intervals):
            yield self.step(policy)
            if progress:
                progress(1)

    def inject(self, host: int, cause: str, precursor: int | None = None, duration: int | None = None) -> None:
        self.faults.inject(host, self.t, cause, precursor, duration)
