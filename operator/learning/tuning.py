"""Online tuning from the cluster's own history, champion / challenger.

Every ``spec.learning.tuneEvery`` intervals, in a background thread: copy the serving
FT-MoE model (the champion), tune the copy's MoE on the older part of the experience
buffer with the predictor's OnlineTuner (the paper's scheme: everything else frozen,
experts added and removed), and score both on the newest ``holdout`` share of the buffer.
The challenger replaces the champion only when its self-graded F1 there (the policy's
alarms, threshold and horizon: operator/learning/grading.py) is at least the champion's;
it is saved with safetensors under ``<state-dir>/models/<policy>/<version>`` and recorded in
``current.json`` there, so a restarted operator serves it again.
"""

from __future__ import annotations

import copy
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ftmoe.operator.learning.experience import Experience
from ftmoe.operator.learning.grading import grade
from ftmoe.operator.models import LoadedModel, model_version
from ftmoe.predictor.registry import load


@dataclass
class TuningOutcome:
    time: float
    outcome: str  # promoted | kept | skipped
    reason: str
    champion_f1: float | None = None
    challenger_f1: float | None = None
    experts_before: int | None = None
    experts_after: int | None = None
    version: str | None = None

    def to_status(self) -> dict[str, Any]:
        from ftmoe.operator.annotations import rfc3339

        d = {k: v for k, v in asdict(self).items() if v is not None}
        d["time"] = rfc3339(self.time)
        for k in ("champion_f1", "challenger_f1"):
            if k in d:
                d[k] = round(d[k], 4)
        return {"".join(w.title() if i else w for i, w in enumerate(k.split("_"))): v for k, v in d.items()}


def training_arrays(exp: Experience, n_classes: int) -> tuple[np.ndarray, np.ndarray, list[str]] | None:
    """Features [T, H', F], labels [T, H'] and the names of the H' nodes with complete
    history; an observed fault of unknown type takes the type the model predicted for it."""
    keep = np.isfinite(exp.values).all(axis=(0, 2))
    if keep.sum() < 2:
        return None
    labels = exp.observed[:, keep].astype(np.int64)
    unknown = labels >= n_classes
    labels[unknown] = np.maximum(exp.predicted[:, keep].astype(np.int64)[unknown], 1)
    return exp.values[:, keep].astype(np.float32), labels, [n for n, k in zip(exp.nodes, keep) if k]


def graded_f1(
    model: Any, features: np.ndarray, labels: np.ndarray, times: np.ndarray, ends: np.ndarray, threshold: float, horizon: float
) -> float:
    """The self-grading F1 (operator/learning/grading.py) of the model's alarms on the windows
    ending at ``ends``: the score the policy reports, so a challenger that trades caught
    onsets for fewer alarm intervals is not promoted. No alarm at all scores 0."""
    risk = model.predict_arrays(features, np.zeros((0, 3), np.int64), ends).fault_probability
    rows = labels[ends]
    g = grade(
        times[ends],
        risk,
        rows,
        np.zeros_like(rows),
        [str(h) for h in range(rows.shape[1])],
        [*model.class_names, "unknown"],
        threshold,
        horizon,
    )
    return g.f1 if g.f1 is not None else 0.0


def tune(
    champion: LoadedModel,
    exp: Experience,
    epochs: int,
    holdout: float,
    now: float,
    threshold: float = 0.6,
    horizon: float = 300.0,
    seed: int = 0,
) -> tuple[TuningOutcome, Any]:
    """Returns the outcome and, when promoted, the challenger predictor. ``threshold`` (the
    policy's cordon threshold) and ``horizon`` (seconds) define the alarms both are graded on."""
    from ftmoe.predictor.data import targets
    from ftmoe.predictor.ftmoe_predictor import FTMoEPredictor
    from ftmoe.predictor.online import OnlineTuner

    model = champion.predictor
    if not isinstance(model, FTMoEPredictor):
        return TuningOutcome(now, "skipped", f"online tuning needs an FT-MoE model, not {model.kind}"), None
    if model.others:
        return TuningOutcome(now, "skipped", f"online tuning adapts one network, not an ensemble of {len(model.members)} (--members)"), None
    arrays = training_arrays(exp, len(model.class_names))
    W, lead, h = model.window, model.lead, model.horizon
    if arrays is None or len(exp) < 4 * (W + lead):
        return TuningOutcome(now, "skipped", f"not enough history yet ({len(exp)} intervals)"), None
    features, labels, nodes = arrays
    features = model.prepare(features, nodes)  # both models below read prepared inputs
    T = len(features)
    split = int(T * (1 - holdout))
    # windows and their horizon-long targets inside each part (horizon 1: the next interval)
    tune_ends = np.arange(W - 1, split - lead - h + 1)
    test_ends = np.arange(max(split, W - 1), T - lead - h + 1)
    if len(tune_ends) == 0 or not (targets(labels, lead, h)[tune_ends] > 0).any() or len(test_ends) < 2:
        return TuningOutcome(now, "skipped", "no observed fault in the tuning part of the buffer"), None
    if not (labels[test_ends] > 0).any():
        return TuningOutcome(now, "skipped", "no observed fault in the held-out part of the buffer"), None
    challenger = copy.deepcopy(model)
    report = OnlineTuner(challenger).tune(features, labels, np.zeros((0, 3), np.int64), tune_ends, epochs=epochs, seed=seed)
    before, after = (graded_f1(m, features, labels, exp.times, test_ends, threshold, horizon) for m in (model, challenger))
    outcome = TuningOutcome(
        now,
        "promoted" if after >= before else "kept",
        f"held-out self-graded F1 {after:.3f} (challenger) vs {before:.3f} (champion) on {len(test_ends)} intervals",
        before,
        after,
        report.experts_before,
        report.experts_after,
    )
    return outcome, (challenger if after >= before else None)


def save_promoted(challenger: Any, state_dir: Path, policy: str, base_key: str, now: float) -> LoadedModel:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
    folder = state_dir / "models" / policy / stamp
    challenger.info["created"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
    challenger.save(folder)
    loaded = LoadedModel(challenger, model_version(folder, challenger), f"tuned {folder}", folder)
    pointer = state_dir / "models" / policy / "current.json"
    tmp = pointer.with_suffix(".tmp")
    tmp.write_text(json.dumps({"path": str(folder), "base": base_key, "version": loaded.version}))
    tmp.replace(pointer)
    return loaded


def restore(state_dir: Path | None, policy: str, base_key: str) -> LoadedModel | None:
    """The tuned model a previous run promoted for this policy and base model, if any."""
    if state_dir is None:
        return None
    pointer = state_dir / "models" / policy / "current.json"
    try:
        doc = json.loads(pointer.read_text())
        if doc.get("base") != base_key:
            return None
        folder = Path(doc["path"])
        predictor = load(folder)
        return LoadedModel(predictor, model_version(folder, predictor), f"tuned {folder}", folder)
    except (OSError, ValueError, KeyError):
        return None
