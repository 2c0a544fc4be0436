"""Score a predictor on a dataset: every metric of the metrics module, as one dict.

Targets are the model's own question (a fault in [end+lead, end+lead+horizon-1]).
Detection counts host-windows; PR-AUC and ROC-AUC rank them without a threshold;
ECE and Brier say whether the risk is a probability; per-horizon scores hold the same
alarms against shorter and longer horizons; lead time is counted per fault (a labelled
segment, or the simulator's record): its first alarm before the onset.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ftmoe.contract.dataset import Dataset
from ftmoe.contract.oracle import oracle_scores
from ftmoe.predictor import calibration, metrics
from ftmoe.predictor.base import Prediction, Predictor
from ftmoe.predictor.data import targets


def score(
    pred: Prediction,
    labels: np.ndarray,
    ends: np.ndarray,
    lead: int,
    records: list[dict[str, Any]],
    classes: int,
    horizon: int = 1,
    detection_only: bool = False,
) -> dict[str, Any]:
    """labels: the dataset's [T, H]; predictions are for [ends + lead, ends + lead + horizon - 1]."""
    y = targets(labels, lead, horizon)[ends]
    positive = y > 0
    out: dict[str, Any] = {
        "windows": int(len(ends)),
        "host_intervals": int(y.size),
        "threshold": pred.threshold,
        "horizon": horizon,
        "positives": int(positive.sum()),
        "base_rate": float(positive.mean()),
    }
    out.update(metrics.detection(y, pred.alarms))
    out.update(metrics.ranking_auc(pred.fault_probability, positive))
    out["brier"] = calibration.brier(pred.fault_probability, positive)
    out["ece"] = calibration.ece(pred.fault_probability, positive)
    out["reliability"] = calibration.reliability(pred.fault_probability, positive)
    out["per_horizon"] = {
        str(h): {
            k: v for k, v in metrics.detection(targets(labels, lead, h)[ends], pred.alarms).items() if k in ("precision", "recall", "f1")
        }
        for h in sorted({1, horizon, 2 * horizon} | set(range(1, horizon + 1)))
        if int(ends.max()) + lead + h <= labels.shape[0]
    }
    if detection_only:
        out.update({"type_accuracy": None, "type_macro_f1": None, "type_majority_accuracy": None})
    else:
        out.update(metrics.typing(y, pred.fault_type, classes))
        out.update(metrics.ranking(y, pred.fault_probability, pred.type_probability))
    out.update(metrics.lead_time(pred.alarms, ends, records, lead, horizon=horizon))
    return out


def evaluate(model: Predictor, ds: Dataset, ends: np.ndarray) -> dict[str, Any]:
    pred = model.predict(ds, ends)
    records = ds.fault_records()
    result = score(pred, ds.labels, ends, model.lead, records, len(ds.class_names) - 1, model.horizon, ds.detection_only)
    if "faults" in ds.metadata and model.horizon == 1:
        # The physical limit on the same intervals: labels outside the scored range hidden.
        lo, hi = int(ends.min()) + model.lead, int(ends.max()) + model.lead + 1
        masked = np.zeros_like(ds.labels)
        masked[lo:hi] = ds.labels[lo:hi]
        result["oracle"] = oracle_scores(masked[lo:hi], shift_records(records, lo), model.lead)
    if model.host_baseline is not None:  # hosts it was not fitted on read against all hosts' median
        result["host_baseline"] = {"hosts": len(ds.host_names), "own": model.host_baseline.known(ds.host_names)}
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


def _num(v: Any, fmt: str = ".4f") -> str:
    return "n/a" if v is None or (isinstance(v, float) and np.isnan(v)) else format(v, fmt)


def format_report(name: str, r: dict[str, Any]) -> str:
    h = r.get("horizon", 1)
    lines = [
        f"model {name}: {r['windows']} windows, {r['host_intervals']} host-windows scored, {r.get('positives', 0)} positive "
        f"(a fault within {h} interval{'s' if h != 1 else ''}; alarm threshold {r['threshold']:.3f})",
        f"  detection   accuracy {r['accuracy']:.4f}  precision {r['precision']:.4f}  recall {r['recall']:.4f}  F1 {r['f1']:.4f}",
        f"  ranking     PR-AUC {_num(r.get('pr_auc'))}  ROC-AUC {_num(r.get('roc_auc'))}  "
        f"(an alarm on everything: precision {r.get('base_rate', 0):.4f})",
        f"  calibration ECE {_num(r.get('ece'))}  Brier {_num(r.get('brier'))}",
        "  per horizon "
        + "  ".join(f"h={k}: P {v['precision']:.3f} R {v['recall']:.3f} F1 {v['f1']:.3f}" for k, v in r.get("per_horizon", {}).items()),
        f"  typing      accuracy {_num(r['type_accuracy'])}  macro-F1 {_num(r['type_macro_f1'])}  "
        f"(always the most common type: {_num(r.get('type_majority_accuracy'))})",
    ]
    if "hr@100" in r:
        lines.append(
            f"  diagnosis   HR@100% {r.get('hr@100', 0):.4f}  HR@150% {r.get('hr@150', 0):.4f}  "
            f"NDCG@100% {r.get('ndcg@100', 0):.4f}  NDCG@150% {r.get('ndcg@150', 0):.4f}"
        )
    lines.append(
        f"  lead time   {r.get('faults_warned', 0)}/{r['faults_scored']} faults warned of before their onset, "
        f"{r['faults_detected']}/{r['faults_scored']} alarmed on before they ended; first alarm "
        f"{r['mean_lead_intervals']:.2f} intervals before onset on average (median {r['median_lead_intervals']:.1f}; "
        "0 or less = after the onset)"
    )
    if "host_baseline" in r:
        b = r["host_baseline"]
        lines.append(f"  baseline    {b['own']}/{b['hosts']} hosts against their own median, the others against all hosts' median")
    if "oracle" in r:
        o = r["oracle"]
        lines.append(
            f"  oracle      F1 {o['f1']:.4f} (recall {o['recall']:.4f}); model F1 / oracle F1 = {r['f1'] / o['f1'] if o['f1'] else 0:.3f}"
        )
    return "\n".join(lines)
