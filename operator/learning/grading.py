"""Self-grading: every alarm scored against what happened within the horizon.

Over a history of intervals (times [T], risk [T, H] with NaN for no prediction, observed
fault codes [T, H] with 0 for none, predicted type codes [T, H]):

- an alarm is the first interval of a run with risk >= threshold; it is a hit when the
  node shows a fault within (t, t + horizon] or is already in one, a false alarm when the
  horizon passes without, and pending until then;
- a fault is a run of observed fault codes on a node; a run that starts again within
  ``merge_gap`` seconds (default: the horizon) of the previous one's end is the same fault.
  Observed signals flap: the kubelet holds MemoryPressure for its
  eviction-pressure-transition-period for this reason, and a heartbeat written from a
  stale cache can set a cleared condition once more. Counting each flap as a fault would
  count one fault twice, and "catch" the second half with the alarm the first half raised;
- the fault's onset is the first interval the operator *observed* it (a node condition,
  an OOM kill, a kubelet eviction, NotReady), which is later than the node began to
  degrade. A fault was caught when an alarm on that node was up within
  [onset - horizon, onset]; its lead is onset - the first such alarm interval (0 when the
  alarm came in the interval the signal was first seen: detection, not a forecast). A fault
  whose first alarm came after the onset (within the horizon) was detected late; its
  delay is that alarm - onset. Late detections are not recall.

Precision is hits / decided alarms, recall caught / faults, by fault type too.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Grade:
    alarms: int = 0
    hits: int = 0
    false_alarms: int = 0
    pending: int = 0
    faults: int = 0
    caught: int = 0
    late: int = 0
    leads: list[float] = field(default_factory=list)
    delays: list[float] = field(default_factory=list)
    per_type: dict[str, dict[str, float | None]] = field(default_factory=dict)
    recent: list[dict[str, object]] = field(default_factory=list)

    @property
    def precision(self) -> float | None:
        decided = self.hits + self.false_alarms
        return self.hits / decided if decided else None

    @property
    def recall(self) -> float | None:
        return self.caught / self.faults if self.faults else None

    @property
    def f1(self) -> float | None:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p is not None and r is not None and p + r > 0 else None

    @property
    def mean_lead(self) -> float | None:
        return float(np.mean(self.leads)) if self.leads else None

    @property
    def mean_delay(self) -> float | None:
        return float(np.mean(self.delays)) if self.delays else None


def starts(mask: np.ndarray) -> np.ndarray:
    """[T, H] bool -> [T, H] True where a run of True begins."""
    prev = np.vstack([np.zeros((1, mask.shape[1]), bool), mask[:-1]])
    return mask & ~prev


def fault_onsets(times: np.ndarray, faulty: np.ndarray, merge_gap: float) -> list[tuple[int, int]]:
    """(onset row, host) of every fault: runs of ``faulty`` [T, H], a run that starts within
    ``merge_gap`` seconds of the previous run's last row on that host joined to it."""
    onsets = []
    begins = starts(faulty)
    for h in range(faulty.shape[1]):
        last_end: float | None = None
        for t in np.flatnonzero(begins[:, h]):
            if last_end is None or times[t] - last_end > merge_gap:
                onsets.append((int(t), h))
            rest = np.flatnonzero(~faulty[t:, h])
            last_end = float(times[t + rest[0] - 1] if len(rest) else times[-1])
    return sorted(onsets)


def grade(
    times: np.ndarray,
    risk: np.ndarray,
    observed: np.ndarray,
    predicted: np.ndarray,
    nodes: list[str],
    classes: list[str],
    threshold: float,
    horizon: float,
    keep_recent: int = 20,
    merge_gap: float | None = None,
) -> Grade:
    g = Grade()
    if len(times) == 0:
        return g
    alarm = np.nan_to_num(risk, nan=-1.0) >= threshold
    faulty = observed > 0
    now = times[-1]
    by_type: dict[str, dict[str, float]] = {}

    def bump(kind: str, key: str) -> None:
        by_type.setdefault(kind, {"alarms": 0, "hits": 0, "faults": 0, "caught": 0})[key] += 1

    for t, h in zip(*np.nonzero(starts(alarm))):
        g.alarms += 1
        kind = classes[int(predicted[t, h])] if 0 < predicted[t, h] < len(classes) else "unknown"
        window = (times > times[t]) & (times <= times[t] + horizon)
        hit = bool(faulty[t, h] or faulty[window, h].any())
        outcome = "hit" if hit else ("pending" if now < times[t] + horizon else "false alarm")
        if outcome == "hit":
            g.hits += 1
            bump(kind, "hits")
        elif outcome == "false alarm":
            g.false_alarms += 1
        else:
            g.pending += 1
        if outcome != "pending":
            bump(kind, "alarms")
        g.recent.append({"time": float(times[t]), "node": nodes[h], "risk": float(risk[t, h]), "predictedType": kind, "outcome": outcome})
    for t, h in fault_onsets(times, faulty, horizon if merge_gap is None else merge_gap):
        kind = classes[int(observed[t, h])] if 0 < observed[t, h] < len(classes) else "unknown"
        g.faults += 1
        bump(kind, "faults")
        before = (times >= times[t] - horizon) & (times <= times[t])
        alarmed = np.flatnonzero(before & alarm[:, h])
        after = np.flatnonzero((times > times[t]) & (times <= times[t] + horizon) & alarm[:, h])
        if len(alarmed):
            g.caught += 1
            bump(kind, "caught")
            g.leads.append(float(times[t] - times[alarmed[0]]))
        elif len(after):
            g.late += 1
            g.delays.append(float(times[after[0]] - times[t]))
    g.per_type = {
        k: {
            "precision": v["hits"] / v["alarms"] if v["alarms"] else None,
            "recall": v["caught"] / v["faults"] if v["faults"] else None,
            **v,
        }
        for k, v in by_type.items()
    }
    g.recent = sorted(g.recent, key=lambda r: -float(r["time"]))[:keep_recent]  # type: ignore[arg-type]  # entries are dict[str, object]; time is a float
    return g
