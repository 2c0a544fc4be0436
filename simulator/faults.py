"""The fault process: per-host root causes, their precursors, and the faults they cause.

Each host is healthy, in the precursor of a fault (a cause is building up: a memory leak
grows, a disk fills, a CPU throttles), in a fault, or recovering. Predictable faults start
when their cause drives the resource over its limit; sudden faults (a share per type)
start with no precursor. Labels are the fault phase, never painted on: the metrics move
because the cause moves them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from ftmoe.simulator.config import CLASS_NAMES, Cause, FaultConfig

HEALTHY, PRECURSOR, FAULT, RECOVERING = range(4)


@dataclass
class FaultRecord:
    host: int
    fault_type: int
    cause: str
    precursor_start: int | None  # None for a sudden fault
    onset: int
    end: int | None = None  # first interval after the fault; None while it lasts
    cancelled: bool = False  # a precursor cut short (an injected fault replaced it)

    def to_dict(self) -> dict[str, object]:
        d = asdict(self)
        d.pop("cancelled")
        return d


def mean_precursor(config: FaultConfig, fault_type: int) -> float:
    causes = [c for c in config.causes if c.fault_type == fault_type]
    total = sum(c.weight for c in causes)
    return sum(c.weight * (c.precursor[0] + c.precursor[1]) / 2 for c in causes) / total


def hazards(config: FaultConfig) -> np.ndarray:
    """Per-interval probability that a healthy host starts each fault type (cpu, mem, disk).

    A renewal argument: a fault of type k occupies P'_k precursor, D_k fault and R recovery
    intervals, so the long-run share of type k is h_k D_k / (1 + sum_j h_j (P'_j + D_j + R)).
    Solving for the target shares gives h_k = r_k B / D_k with r_k = share_k / share_none
    and B = 1 / (1 - sum_j r_j (P'_j + R) / D_j).
    """
    shares = config.target_shares
    none = shares["none"]
    r = np.array([shares[name] / none for name in CLASS_NAMES[1:]])
    dur = np.array(config.duration)
    sudden = np.array(config.sudden_share)
    pre = np.array([(1 - sudden[k]) * mean_precursor(config, k + 1) for k in range(3)])
    load = float(np.sum(r * (pre + config.refractory) / dur))
    if load >= 1:
        raise ValueError("fault shares too high for the precursor/recovery lengths: no healthy time left")
    b = 1.0 / (1.0 - load)
    return r * b / dur


class FaultProcess:
    """Vectorised per-host fault state machine."""

    def __init__(self, hosts: int, config: FaultConfig, rng: np.random.Generator):
        self.hosts = hosts
        self.rng = rng
        self.phase = np.zeros(hosts, dtype=np.int8)
        self.fault_type = np.zeros(hosts, dtype=np.int8)
        self.cause = np.full(hosts, -1, dtype=np.int16)  # index into config.causes
        self.start = np.zeros(hosts, dtype=np.int64)  # start of the current phase
        self.until = np.zeros(hosts, dtype=np.int64)  # scheduled end of the current phase
        self.jitter = np.zeros(hosts)
        self.record = np.full(hosts, -1, dtype=np.int64)
        self.records: list[FaultRecord] = []
        self.hazard_scale = 1.0  # live mode: 0 leaves only injected faults
        self.forced_duration = np.zeros(hosts, dtype=np.int64)  # set by inject(); 0 draws one
        self.set_config(config)

    def set_config(self, config: FaultConfig) -> None:
        self.config = config
        self.causes: tuple[Cause, ...] = config.causes
        self.hazard = hazards(config)
        self.cause_of_type = {k: np.array([i for i, c in enumerate(config.causes) if c.fault_type == k]) for k in (1, 2, 3)}
        self.cause_weights = {
            k: np.array([config.causes[i].weight for i in idx]) / sum(config.causes[i].weight for i in idx)
            for k, idx in self.cause_of_type.items()
        }

    def _duration(self, fault_type: int) -> int:
        mean = self.config.duration[fault_type - 1]
        return max(1, int(round(self.rng.gamma(4.0, mean / 4.0))))

    def _pick_cause(self, fault_type: int) -> int:
        return int(self.rng.choice(self.cause_of_type[fault_type], p=self.cause_weights[fault_type]))

    def progress(self, t: int) -> np.ndarray:
        """How far each precursor has built up, 0..1 (noisy); 1 during a fault."""
        span = np.maximum(self.until - self.start, 1)
        u = (t - self.start + 1) / span + self.jitter * self.rng.standard_normal(self.hosts)
        u = np.clip(u, 0.0, 1.0)
        return np.where(self.phase == FAULT, 1.0, np.where(self.phase == PRECURSOR, u, 0.0))

    def begin_fault(self, h: int, t: int, fault_type: int, cause: int, precursor_start: int | None) -> None:
        self.phase[h] = FAULT
        self.fault_type[h] = fault_type
        self.cause[h] = cause
        self.start[h] = t
        forced = int(self.forced_duration[h])
        self.forced_duration[h] = 0
        self.until[h] = t + (forced if forced > 0 else self._duration(fault_type))
        self.jitter[h] = 0.0
        if precursor_start is None or self.record[h] < 0:
            self.records.append(FaultRecord(h, fault_type, self.causes[cause].name, precursor_start, t))
            self.record[h] = len(self.records) - 1
        else:
            self.records[self.record[h]].onset = t

    def begin_precursor(self, h: int, t: int, fault_type: int, cause: int) -> None:
        c = self.causes[cause]
        length = int(self.rng.integers(c.precursor[0], c.precursor[1] + 1))
        self.phase[h] = PRECURSOR
        self.fault_type[h] = fault_type
        self.cause[h] = cause
        self.start[h] = t
        self.until[h] = t + length
        self.jitter[h] = c.noise
        # Onset is provisional: the cause may push the resource over its limit earlier.
        self.records.append(FaultRecord(h, fault_type, c.name, t, t + length))
        self.record[h] = len(self.records) - 1

    def inject(self, h: int, t: int, cause_name: str, precursor: int | None = None, duration: int | None = None) -> None:
        """Start a named cause on host h now (for demos and tests); ``precursor`` and
        ``duration`` (intervals) fix what would otherwise be drawn at random."""
        names = [c.name for c in self.causes]
        if cause_name not in names:
            raise ValueError(f"unknown fault {cause_name!r}; choose one of: {', '.join(names)}")
        if self.phase[h] in (PRECURSOR, FAULT):
            self.end_fault(h, t)
        cause = names.index(cause_name)
        ftype = self.causes[cause].fault_type
        self.begin_precursor(h, t, ftype, cause)
        self.forced_duration[h] = max(0, duration or 0)
        if precursor is not None:
            self.until[h] = t + max(1, precursor)
            self.records[self.record[h]].onset = int(self.until[h])

    def end_fault(self, h: int, t: int) -> None:
        if self.record[h] >= 0:
            rec = self.records[self.record[h]]
            if self.phase[h] == PRECURSOR:  # cut short: the fault never happened
                rec.cancelled = True
            else:
                rec.end = t
        self.phase[h] = RECOVERING
        self.start[h] = t
        self.until[h] = t + self.config.refractory
        self.cause[h] = -1
        self.record[h] = -1

    def advance(self, t: int, over_limit: np.ndarray) -> None:
        """Move every host's state to interval t. ``over_limit[h]`` says the host's
        resource crossed its physical limit in the previous interval (an OOM, a full disk),
        which turns a precursor into a fault before its scheduled onset."""
        for h in np.flatnonzero((self.phase == FAULT) & (t >= self.until)):
            self.end_fault(int(h), t)
        done = (self.phase == RECOVERING) & (t >= self.until)
        self.phase[done] = HEALTHY
        for h in np.flatnonzero((self.phase == PRECURSOR) & ((t >= self.until) | over_limit)):
            self.begin_fault(int(h), t, int(self.fault_type[h]), int(self.cause[h]), int(self.start[h]))
        healthy = np.flatnonzero(self.phase == HEALTHY)
        if healthy.size == 0:
            return
        draws = self.rng.random(healthy.size)
        cum = np.cumsum(self.hazard * self.hazard_scale)
        for h, x in zip(healthy, draws):
            if x >= cum[-1]:
                continue
            ftype = int(np.searchsorted(cum, x, side="right")) + 1
            cause = self._pick_cause(ftype)
            if self.rng.random() < self.config.sudden_share[ftype - 1]:
                self.begin_fault(int(h), t, ftype, cause, None)
            else:
                self.begin_precursor(int(h), t, ftype, cause)

    def labels(self) -> np.ndarray:
        return np.where(self.phase == FAULT, self.fault_type, 0).astype(np.int8)

    def finished_records(self) -> list[FaultRecord]:
        """Faults that happened (running ones have end None); unfinished precursors are
        left out, since their fault lies beyond the end of the run."""
        out = []
        for rec in self.records:
            pending = self.record[rec.host] >= 0 and self.records[self.record[rec.host]] is rec and self.phase[rec.host] == PRECURSOR
            if not rec.cancelled and not pending:
                out.append(rec)
        return out
