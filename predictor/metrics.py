"""Evaluation metrics: detection, fault typing, diagnosis ranking (HR/NDCG) and lead time.

Detection: a host-interval is positive when any fault label is set. Typing: among the
truly faulty host-intervals, is the predicted type right (accuracy, macro-F1).
Ranking (the TranAD/PreGAN lineage, BRIEF section 3): per interval with faults, every
(host, fault type) pair is a candidate scored P(fault) x P(type | host); with L the true
pairs, HitRate@P% = |top-k ∩ L| / |L| and NDCG@P% = DCG@k / IDCG@k for k = round(P% x |L|);
both are averaged over the intervals that have faults.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np


def detection(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    t = np.asarray(y_true).ravel() > 0
    p = np.asarray(y_pred).ravel() > 0
    tp = int((t & p).sum())
    fp = int((~t & p).sum())
    fn = int((t & ~p).sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "accuracy": float((t == p).mean()) if t.size else 0.0,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "tp": tp,
        "fp": fp,
        "fn": fn,
    }


def typing(y_true: np.ndarray, type_pred: np.ndarray, classes: int) -> dict[str, float | None]:
    """``y_true`` class labels (0 = none); ``type_pred`` predicted class 1..classes."""
    t = np.asarray(y_true).ravel()
    p = np.asarray(type_pred).ravel()
    faulty = t > 0
    if not faulty.any():
        return {"type_accuracy": None, "type_macro_f1": None, "type_majority_accuracy": None}
    t, p = t[faulty], p[faulty]
    majority = float(np.bincount(t).max() / len(t))
    f1s = []
    for k in range(1, classes + 1):
        tp = int(((t == k) & (p == k)).sum())
        fp = int(((t != k) & (p == k)).sum())
        fn = int(((t == k) & (p != k)).sum())
        if tp + fp + fn == 0:
            continue
        f1s.append(2 * tp / (2 * tp + fp + fn))
    return {
        "type_accuracy": float((t == p).mean()),
        "type_macro_f1": float(np.mean(f1s)) if f1s else 0.0,
        "type_majority_accuracy": majority,
    }


def _ranking_one(scores: np.ndarray, truth: np.ndarray, share: float) -> tuple[float, float]:
    """scores, truth: [H*K] for one interval; truth is 0/1."""
    n_true = int(truth.sum())
    k = max(1, int(round(share * n_true)))
    order = np.argsort(-scores, kind="stable")[:k]
    hits = truth[order]
    hit_rate = float(hits.sum() / n_true)
    gains = hits / np.log2(np.arange(2, k + 2))
    ideal = 1.0 / np.log2(np.arange(2, min(k, n_true) + 2))
    return hit_rate, float(gains.sum() / ideal.sum())


def ranking(labels: np.ndarray, fault_prob: np.ndarray, type_prob: np.ndarray, shares: Iterable[float] = (1.0, 1.5)) -> dict[str, float]:
    """labels [N, H] (0 none, 1..K); fault_prob [N, H]; type_prob [N, H, K]."""
    N, H = labels.shape
    K = type_prob.shape[-1]
    out: dict[str, list[float]] = {}
    for n in range(N):
        if not (labels[n] > 0).any():
            continue
        truth = np.zeros((H, K))
        faulty = np.flatnonzero(labels[n] > 0)
        truth[faulty, labels[n, faulty] - 1] = 1
        scores = (fault_prob[n][:, None] * type_prob[n]).ravel()
        for s in shares:
            hr, ndcg = _ranking_one(scores, truth.ravel(), s)
            out.setdefault(f"hr@{int(s * 100)}", []).append(hr)
            out.setdefault(f"ndcg@{int(s * 100)}", []).append(ndcg)
    return {k: float(np.mean(v)) for k, v in out.items()} if out else {f"{m}@{int(s * 100)}": 0.0 for s in shares for m in ("hr", "ndcg")}


def lead_time(
    alarms: np.ndarray, ends: np.ndarray, records: Iterable[Mapping[str, Any]], lead: int = 1, lookback: int = 20, horizon: int = 1
) -> dict[str, float]:
    """Per fault, its first alarm, in intervals before the onset.

    ``alarms`` [N, H]: the prediction made at interval ``ends[n]`` about
    [ends[n] + lead, ends[n] + lead + horizon - 1]. An alarm speaks of a fault from the
    first interval whose question covers its onset (onset - lead - horizon + 1), or, for a
    simulator fault with a precursor, from the precursor's start (at most ``lookback``
    before the onset), until the fault ends. Its lead is onset - (alarm interval): 1 for a
    warning issued the interval before the onset, 0 or less once the fault is under way.
    ``faults_warned`` counts faults whose first alarm came before the onset;
    ``faults_detected`` those alarmed on at any point before they ended.
    """
    pos = {int(t): n for n, t in enumerate(ends)}
    leads, warned, detected, total = [], 0, 0, 0
    for r in records:
        onset = int(r["onset"])
        earliest = onset - lead - horizon + 1
        if earliest not in pos and onset - lead not in pos:
            continue  # outside the scored range
        total += 1
        if r.get("precursor_start") is not None:
            earliest = min(earliest, max(onset - lookback, int(r["precursor_start"]) - 1))
        end = int(r["end"]) if r.get("end") is not None else onset + 1
        for t in range(earliest, end - lead):
            n = pos.get(t)
            if n is not None and alarms[n, int(r["host"])]:
                detected += 1
                warned += t < onset
                leads.append(onset - t)
                break
    return {
        "faults_scored": total,
        "faults_detected": detected,
        "faults_warned": warned,
        "fault_detection_rate": detected / total if total else 0.0,
        "warned_before_onset_share": warned / total if total else 0.0,
        "mean_lead_intervals": float(np.mean(leads)) if leads else 0.0,
        "median_lead_intervals": float(np.median(leads)) if leads else 0.0,
    }


def ranking_auc(prob: np.ndarray, positive: np.ndarray) -> dict[str, float | None]:
    """PR-AUC (average precision) and ROC-AUC of the risk over host-windows; None when the
    scored windows hold no positive (or no negative)."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    y = np.asarray(positive).ravel().astype(bool)
    p = np.asarray(prob, dtype=np.float64).ravel()
    if not y.any() or y.all():
        return {"pr_auc": None, "roc_auc": None}
    return {"pr_auc": float(average_precision_score(y, p)), "roc_auc": float(roc_auc_score(y, p))}
