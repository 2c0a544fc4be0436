"""Score a predictor on a dataset: every metric of the metrics module, as one dict."""

from __future__ import annotations

from typing import Any

import numpy as np

from ftmoe.predictor import metrics
from ftmoe.predictor.base import Prediction, Predictor
from ftmoe.simulator.dataset import Dataset
from ftmoe.simulator.oracle import oracle_scores


def score(pred: Prediction, labels: np.ndarray, ends: np.ndarray, lead: int, records: list[dict[str, Any]], classes: int) -> dict[str, Any]:
    """labels: the dataset's [T, H]; predictions are for ends + lead."""
    y = labels[ends + lead]
    out: dict[str, Any] = {"windows": int(len(ends)), "host_intervals": int(y.size), "threshold": pred.threshold}
    out.update(metrics.detection(y, pred.alarms))
    out.update(metrics.typing(y, pred.fault_type, classes))
    out.update(metrics.ranking(y, pred.fault_probability, pred.type_probability))
    out.update(metrics.lead_time(pred.alarms, ends, records, lead))
    return out


def evaluate(model: Predictor, ds: Dataset, ends: np.ndarray) -> dict[str, Any]:
    pred = model.predict(ds, ends)
    result = score(pred, ds.labels, ends, model.lead, ds.fault_records(), len(ds.class_names) - 1)
    records = ds.fault_records()
    if records:
        # The physical limit on the same intervals: labels outside the scored range hidden.
        lo, hi = int(ends.min()) + model.lead, int(ends.max()) + model.lead + 1
        masked = np.zeros_like(ds.labels)
        masked[lo:hi] = ds.labels[lo:hi]
        result["oracle"] = oracle_scores(masked[lo:hi], shift_records(records, lo), model.lead)
    return result


def shift_records(records: list[dict[str, Any]], offset: int) -> list[dict[str, Any]]:
    out = []
    for r in records:
        s = dict(r)
        s["onset"] = r["onset"] - offset
        s["end"] = None if r.get("end") is None else r["end"] - offset
        s["precursor_start"] = None if r.get("precursor_start") is None else r["precursor_start"] - offset
        out.append(s)
    return out


def format_report(name: str, r: dict[str, Any]) -> str:
    lines = [
        f"model {name}: {r['windows']} windows, {r['host_intervals']} host-intervals scored (threshold {r['threshold']:.3f})",
        f"  detection   accuracy {r['accuracy']:.4f}  precision {r['precision']:.4f}  recall {r['recall']:.4f}  F1 {r['f1']:.4f}",
        f"  typing      accuracy {r['type_accuracy']:.4f}  macro-F1 {r['type_macro_f1']:.4f}",
        f"  ranking     HR@100% {r.get('hr@100', 0):.4f}  HR@150% {r.get('hr@150', 0):.4f}  "
        f"NDCG@100% {r.get('ndcg@100', 0):.4f}  NDCG@150% {r.get('ndcg@150', 0):.4f}",
        f"  lead time   {r['faults_detected']}/{r['faults_scored']} faults detected, first alarm on average {r['mean_lead_intervals']:.2f} "
        f"intervals before onset (median {r['median_lead_intervals']:.1f})",
    ]
    if "oracle" in r:
        o = r["oracle"]
        lines.append(f"  oracle      F1 {o['f1']:.4f} (recall {o['recall']:.4f}); model F1 / oracle F1 = "
                     f"{r['f1'] / o['f1'] if o['f1'] else 0:.3f}")
    return "\n".join(lines)
