"""Self-grading: every alarm scored against what happened within the horizon.

Over a history of intervals (times [T], risk [T, H] with NaN for no prediction, observed
fault codes [T, H] with 0 for none, predicted type codes [T, H]):

- an alarm is the first interval of a run with risk >= threshold; it is a hit when the
  node shows a fault within (t, t + horizon] or is already in one, a false alarm when the
  horizon passes without, and pending until then;
- a fault is the first interval of a run of observed fault codes; it was caught when an
  alarm on that node began within [onset - horizon, onset]; its lead is onset - that alarm.

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
    leads: list[float] = field(default_factory=list)
    per_type: dict[str, dict[str, float]] = field(default_factory=dict)
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


def starts(mask: np.ndarray) -> np.ndarray:
    """[T, H] bool -> [T, H] True where a run of True begins."""
    prev = np.vstack([np.zeros((1, mask.shape[1]), bool), mask[:-1]])
    return mask & ~prev


def grade(times: np.ndarray, risk: np.ndarray, observed: np.ndarray, predicted: np.ndarray, nodes: list[str],
          classes: list[str], threshold: float, horizon: float, keep_recent: int = 20) -> Grade:
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
        g.recent.append({"time": float(times[t]), "node": nodes[h], "risk": float(risk[t, h]), "predictedType": kind,
                         "outcome": outcome})
    for t, h in zip(*np.nonzero(starts(faulty))):
        kind = classes[int(observed[t, h])] if 0 < observed[t, h] < len(classes) else "unknown"
        g.faults += 1
        bump(kind, "faults")
        before = (times >= times[t] - horizon) & (times <= times[t])
        alarmed = np.flatnonzero(before & alarm[:, h])
        if len(alarmed):
            g.caught += 1
            bump(kind, "caught")
            g.leads.append(float(times[t] - times[alarmed[0]]))
    g.per_type = {k: {"precision": v["hits"] / v["alarms"] if v["alarms"] else None,
                      "recall": v["caught"] / v["faults"] if v["faults"] else None, **v} for k, v in by_type.items()}
    g.recent = sorted(g.recent, key=lambda r: -float(r["time"]))[:keep_recent]  # type: ignore[arg-type]
    return g
