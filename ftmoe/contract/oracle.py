"""The physical limit of prediction: what a perfect predictor could detect, and when.

A fault-interval t of host h is detectable at lead time L when, at interval t - L, some
evidence of that fault already existed: its precursor had started (predictable faults) or
the fault itself was under way. A sudden fault's first L intervals are never detectable.
The oracle flags exactly the detectable intervals, so its precision is 1 and its recall
is the share of fault-intervals that are detectable at all; no causal predictor that
sees only the past can exceed that recall.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np


def detectable_mask(records: Iterable[Mapping[str, Any]], T: int, H: int, lead: int) -> np.ndarray:
    """[T, H] bool: fault-intervals an oracle with this lead time can flag."""
    mask = np.zeros((T, H), dtype=bool)
    for r in records:
        onset = int(r["onset"])
        end = T if r.get("end") is None else min(int(r["end"]), T)
        first_evidence = onset if r.get("precursor_start") is None else int(r["precursor_start"])
        start = max(onset, first_evidence + lead)
        if start < end:
            mask[start:end, int(r["host"])] = True
    return mask


def oracle_scores(labels: np.ndarray, records: Iterable[Mapping[str, Any]], lead: int = 1) -> dict[str, float]:
    """Best detection recall, precision and F1 any predictor could reach at this lead."""
    T, H = labels.shape
    positive = labels > 0
    flagged = detectable_mask(list(records), T, H, lead) & positive
    tp = int(flagged.sum())
    pos = int(positive.sum())
    recall = tp / pos if pos else 1.0
    precision = 1.0 if tp else (1.0 if pos == 0 else 0.0)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    accuracy = float((flagged == positive).mean())
    return {"lead": lead, "recall": recall, "precision": precision, "f1": f1, "accuracy": accuracy}


def predictable_share(records: Iterable[Mapping[str, Any]]) -> float:
    recs = list(records)
    return sum(r.get("precursor_start") is not None for r in recs) / len(recs) if recs else 0.0
