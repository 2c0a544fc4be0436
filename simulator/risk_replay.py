"""A predictor's risk, replayed from what it scored on real servers.

The kubernetes regime has no metrics of its own: its nodes' risk over time is cut from a
real model's output on a real dataset's held-out test period (``ScoreTraces``). Healthy time
replays contiguous stretches of the model's scores on healthy hosts, so its false alarms come
as often and in the bursts they came on real servers; a predictable fault replays the
model's scores in the hour before a real incident's onset, so what it saw coming (or not) is
what the model saw coming on real data. Faults the regime draws as not predictable keep the
healthy stream up to their onset.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class ScoreTraces:
    """healthy: 1-D risk stretches of hosts with no fault near; leadups: the risk over the
    ``lookback`` intervals before a real fault's onset (each exactly that long); during:
    the risk while that fault lasted (same order as leadups)."""

    healthy: list[np.ndarray] = field(repr=False)
    leadups: list[np.ndarray] = field(repr=False)
    during: list[np.ndarray] = field(repr=False)
    source: str = ""

    def __post_init__(self) -> None:
        if not self.healthy or not any(len(h) for h in self.healthy):
            raise ValueError(f"{self.source}: no healthy stretch to replay")
        if not self.leadups:
            raise ValueError(f"{self.source}: no fault with a full lead-up in the scored period")
        if len({len(x) for x in self.leadups}) != 1:
            raise ValueError("every lead-up must have the same length")

    @property
    def lookback(self) -> int:
        return len(self.leadups[0])


def extract(
    prob: np.ndarray, ends: np.ndarray, labels: np.ndarray, lookback: int, horizon: int, lead: int = 1, source: str = ""
) -> ScoreTraces:
    """Cut traces from a model's scores. prob: [len(ends), H] risk at decision time ``ends``
    (predicting [end + lead, end + lead + horizon - 1]); labels: the dataset's [T, H]."""
    pos = {int(e): i for i, e in enumerate(ends)}
    healthy: list[np.ndarray] = []
    leadups: list[np.ndarray] = []
    during: list[np.ndarray] = []
    T, H = labels.shape
    for h in range(H):
        faulty = labels[:, h] > 0
        onsets = np.flatnonzero(faulty & ~np.concatenate([[False], faulty[:-1]]))
        near = np.zeros(T, bool)
        for o in onsets:
            near[max(0, o - lookback) : o] = True
        near |= faulty
        # A window whose target reaches a fault is not healthy either.
        for k in range(lead, lead + horizon):
            near[: T - k] |= faulty[k:]
        ok = np.array([int(e) in pos and not near[int(e)] for e in range(T)])
        run: list[float] = []
        for e in range(T):
            if ok[e]:
                run.append(float(prob[pos[e], h]))
            elif run:
                healthy.append(np.array(run))
                run = []
        if run:
            healthy.append(np.array(run))
        for o in onsets:
            before = [o - lookback + i for i in range(lookback)]
            if all(b in pos for b in before):
                leadups.append(np.array([prob[pos[b], h] for b in before]))
                end = o
                while end < T and faulty[end]:
                    end += 1
                during.append(np.array([prob[pos[e], h] for e in range(o, end) if e in pos] or [prob[pos[before[-1]], h]]))
    return ScoreTraces(healthy, leadups, during, source)


def risk_matrix(
    traces: ScoreTraces, intervals: int, nodes: int, faults: list[tuple[int, int, int, bool, bool]], rng: np.random.Generator
) -> np.ndarray:
    """[intervals, nodes] risk. faults: (node, onset interval, end interval, predictable,
    reports) — ``reports`` False for a node that sends no metrics while the fault lasts (NaN)."""
    lengths = np.array([len(h) for h in traces.healthy])
    weights = lengths / lengths.sum()
    risk = np.empty((intervals, nodes), np.float32)
    for n in range(nodes):
        col = risk[:, n]
        t = 0
        while t < intervals:
            run = traces.healthy[int(rng.choice(len(lengths), p=weights))]
            start = int(rng.integers(len(run)))
            piece = run[start:][: intervals - t]
            col[t : t + len(piece)] = piece
            t += len(piece)
    for node, onset, end, predictable, reports in faults:
        if predictable:
            k = int(rng.integers(len(traces.leadups)))
            lo = max(0, onset - traces.lookback)
            risk[lo:onset, node] = traces.leadups[k][traces.lookback - (onset - lo) :]
            during = traces.during[k]
        else:
            during = traces.healthy[int(rng.integers(len(traces.healthy)))]
        span = slice(onset, min(end, intervals))
        if not reports:
            risk[span, node] = np.nan
        else:
            n = span.stop - span.start
            risk[span, node] = np.resize(during, n) if n > 0 else []
    return risk


def oracle_matrix(intervals: int, nodes: int, faults: list[tuple[int, int, int, bool, bool]], lead: int) -> np.ndarray:
    """Risk 1 in the ``lead`` intervals before each predictable fault, 0 elsewhere; NaN while a
    node that sends no metrics is down. What a perfect predictor would say."""
    risk = np.zeros((intervals, nodes), np.float32)
    for node, onset, end, predictable, reports in faults:
        if predictable:
            risk[max(0, onset - lead) : onset, node] = 1.0
        if not reports:
            risk[onset : min(end, intervals), node] = np.nan
    return risk
