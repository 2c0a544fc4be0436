"""One policy's learning state: its experience buffer, the model it serves (the base model
or a promoted challenger), the tuning in flight and the last tuning's outcome.

The state belongs to one base model (``spec.model``): when the policy's model changes, the
challenger tuned from the old one and any tuning still running on it are dropped, so the
new model serves from the next interval. ``Deps`` keeps one Learner per policy and
releases it when the policy goes away.
"""

from __future__ import annotations

import logging
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ftmoe.operator import own_metrics as M
from ftmoe.operator.learning.experience import Experience
from ftmoe.operator.learning.grading import Grade, grade
from ftmoe.operator.learning.ground_truth import observed_fault
from ftmoe.operator.learning.tuning import TuningOutcome, restore, save_promoted, tune
from ftmoe.operator.models import LoadedModel
from ftmoe.operator.node_metrics import FeatureWindow
from ftmoe.operator.policy import PolicySpec

log = logging.getLogger("ftmoe.operator.learning")
BUFFER_BYTES = 256 * 2**20  # the feature values a policy's buffer may hold, whatever learning.bufferIntervals says
# A buffer under 1 MB (32 intervals of 500 nodes) is saved every interval; a larger one every
# SAVE_EVERY and when the operator stops: a crash loses at most that much experience, and
# writing 8 MB every interval took a tenth of a 500-node interval on a busy machine.
SAVE_ALWAYS_BELOW = 2**20
SAVE_EVERY = 300.0


def buffer_cap(intervals: int, nodes: int, features: int) -> int:
    """learning.bufferIntervals, lowered so that the buffer's values stay within BUFFER_BYTES
    (at 5,000 nodes and 13 features: 1,032 intervals, 8.6 hours at 30 s)."""
    return max(10, min(intervals, BUFFER_BYTES // max(1, nodes * features * 4)))


@dataclass
class Learner:
    policy: str
    state_dir: Path | None  # where the buffer and promoted models persist; None keeps them in memory
    model_key: str | None = None  # spec.model.key() of the base model this state was built on
    experience: Experience | None = None
    tuned: LoadedModel | None = None  # the promoted challenger, when it serves
    tuning: Future[tuple[TuningOutcome, Any]] | None = None
    tuning_key: str | None = None  # the base model the running tuning started from
    last_tuning: TuningOutcome | None = None
    since_tuning: int = 0
    restored: bool = False  # the state dir was read for this base model
    saved_at: float = float("-inf")  # when the buffer was last written to the state dir

    def flush(self) -> None:
        """Save the buffer now (the operator stops)."""
        if self.state_dir is not None and self.experience is not None and len(self.experience):
            self.experience.save(self.buffer_path)

    @property
    def buffer_path(self) -> Path:
        assert self.state_dir is not None
        return self.state_dir / "buffers" / f"{self.policy}.npz"

    def follow(self, spec: PolicySpec) -> None:
        """Drop what was learned from another base model than ``spec.model``."""
        key = spec.model.key()
        if self.model_key is not None and key != self.model_key:
            log.info(
                "%s: spec.model changed (%s -> %s); the challenger tuned from the old model no longer serves",
                self.policy,
                self.model_key,
                key,
            )
            self.tuned, self.tuning, self.tuning_key, self.since_tuning, self.restored = None, None, None, 0, False
        self.model_key = key

    def serving(self, spec: PolicySpec, base: LoadedModel, now: float) -> LoadedModel:
        """The base model, or the challenger online tuning promoted for it (this run or, through
        the state dir, an earlier one). A finished tuning is applied here."""
        self.follow(spec)
        job = self.tuning
        if job is not None and job.done():
            self.tuning = None
            self.apply(job, base, now)
        if self.tuned is None and not self.restored:
            self.tuned = restore(self.state_dir, self.policy, spec.model.key())
            self.restored = True
        return self.tuned or base

    def apply(self, job: Future[tuple[TuningOutcome, Any]], base: LoadedModel, now: float) -> None:
        try:
            outcome, challenger = job.result()
        except Exception as err:  # noqa: BLE001 - a failed tuning leaves the champion serving
            outcome, challenger = TuningOutcome(now, "skipped", f"tuning failed: {type(err).__name__}: {err}"), None
        if challenger is not None and self.tuning_key == self.model_key:
            if self.state_dir is not None:
                self.tuned = save_promoted(challenger, self.state_dir, self.policy, str(self.model_key), now)
            else:
                self.tuned = LoadedModel(challenger, f"{base.version}-tuned-{int(now)}", "tuned in memory", base.folder)
            outcome.version = self.tuned.version
        self.last_tuning = outcome
        M.TUNINGS.labels(self.policy, outcome.outcome).inc()
        log.info("%s: online tuning %s: %s", self.policy, outcome.outcome, outcome.reason)

    def schedule(self, tuner: ThreadPoolExecutor, spec: PolicySpec, model: LoadedModel, now: float) -> None:
        """Every ``spec.learning.tuneEvery`` intervals, a copy of the serving model is tuned in
        the background on a snapshot of the buffer."""
        if spec.learning.tune_every <= 0 or self.tuning is not None or self.experience is None:
            return
        self.since_tuning += 1
        if self.since_tuning < spec.learning.tune_every:
            return
        self.since_tuning = 0
        exp = self.experience
        snapshot = Experience(
            list(exp.nodes),
            list(exp.features),
            list(exp.classes),
            exp.times.copy(),
            exp.values.copy(),
            exp.risk.copy(),
            exp.predicted.copy(),
            exp.observed.copy(),
        )
        self.tuning_key = self.model_key
        self.tuning = tuner.submit(
            tune, model, snapshot, spec.learning.tune_epochs, spec.learning.holdout, now, spec.thresholds.cordon, spec.horizon
        )

    def buffer(self, features: list[str], classes: list[str]) -> Experience:
        exp = self.experience
        if exp is None or exp.features != list(features) or exp.classes != list(classes):
            exp = Experience.load(self.buffer_path, features, classes) if self.state_dir else Experience([], features, classes)
            self.experience = exp
        return exp

    def record(
        self,
        spec: PolicySpec,
        predictor: Any,
        nodes: dict[str, dict[str, Any]],
        pods: list[dict[str, Any]],
        predictions: dict[str, Any],
        window: FeatureWindow,
        now: float,
    ) -> Grade:
        """Record this interval (features, risk, predicted and observed fault) and grade the alarms."""
        classes = list(predictor.class_names)
        exp = self.buffer(list(predictor.feature_names), classes)
        on: dict[str, list[dict[str, Any]]] = {}
        for p in pods:
            on.setdefault((p.get("spec") or {}).get("nodeName") or "", []).append(p)
        names = list(nodes)
        codes = {c: i for i, c in enumerate(classes)}
        observed = [observed_fault(nodes[n], on.get(n, []), now - spec.interval, spec.learning.labels) for n in names]
        last = window.values[-1] if len(window.times) else np.full((len(names), len(predictor.feature_names)), np.nan)
        exp.append(
            now,
            names,
            last.astype(np.float32),
            np.array([predictions[n].risk if n in predictions else np.nan for n in names], np.float32),
            np.array([codes.get(predictions[n].fault_type, 0) if n in predictions else 0 for n in names], np.int8),
            np.array([0 if o is None else codes.get(o, len(classes)) for o in observed], np.int8),
            buffer_cap(spec.learning.buffer_intervals, len(names), len(predictor.feature_names)),
            spec.learning.retention,
        )
        # A small buffer is saved every interval; a large one (thousands of nodes) at most
        # every SAVE_EVERY, since compressing it takes longer than an interval should.
        if self.state_dir is not None and (exp.values.nbytes < SAVE_ALWAYS_BELOW or now - self.saved_at >= SAVE_EVERY):
            exp.save(self.buffer_path)
            self.saved_at = now
        g = grade(exp.times, exp.risk, exp.observed, exp.predicted, exp.nodes, [*classes, "unknown"], spec.thresholds.cordon, spec.horizon)
        M.SELF_GRADE.labels(self.policy, "precision").set(g.precision if g.precision is not None else float("nan"))
        M.SELF_GRADE.labels(self.policy, "recall").set(g.recall if g.recall is not None else float("nan"))
        M.SELF_GRADE.labels(self.policy, "mean_lead_seconds").set(g.mean_lead if g.mean_lead is not None else float("nan"))
        return g
