"""The interface every predictor implements (FT-MoE and each baseline), and model files.

A model folder holds ``config.json`` (kind, version, feature and class names, window,
lead, threshold, normalisation, architecture, training metrics) and, for models with
tensors, ``model.safetensors``. Loading reads JSON and safetensors only: never a pickle.
"""

from __future__ import annotations

import json
import math
import sys
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ftmoe import __version__
from ftmoe.contract.dataset import Dataset
from ftmoe.predictor.calibration import Calibrator
from ftmoe.predictor.config import DEFAULT_NORMALISATION
from ftmoe.predictor.data import Splits, fitting_end
from ftmoe.predictor.host_baseline import HostBaseline

AUTO_NORMALISATIONS = ("zscore", "quantile")  # what --normalisation auto tries, in this order
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"


@dataclass
class Prediction:
    fault_probability: np.ndarray  # [N, H]
    type_probability: np.ndarray  # [N, H, K] over the fault classes (class_names[1:])
    threshold: float

    @property
    def alarms(self) -> np.ndarray:
        return self.fault_probability >= self.threshold

    @property
    def fault_type(self) -> np.ndarray:
        """Predicted class index into class_names (1..K) for every host, alarm or not."""
        return self.type_probability.argmax(axis=-1) + 1


@dataclass
class TrainOptions:
    window: int = 6
    lead: int = 1
    horizon: int = 1  # targets: a fault in [t+lead, t+lead+horizon-1]
    epochs: int = 30
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-2
    lr_step: int = 10  # x0.1 every 10 epochs, as the paper
    lr_gamma: float = 0.1
    patience: int = 6  # early stopping on validation PR-AUC
    min_epochs: int = 5  # no early stop before this many epochs
    seed: int = 0
    calibration: str = "platt"  # fitted on validation windows: platt | isotonic | none
    # the networks' inputs: zscore (log1p for heavy tails) | quantile (rank-Gaussian) | both |
    # auto (train with zscore and with quantile, keep the higher validation PR-AUC)
    normalisation: str = DEFAULT_NORMALISATION
    pos_weight: str = "sqrt"  # up-weighting of faulty host-windows in the detection loss: sqrt(neg/pos) | none
    pretrain_epochs: int = 0  # self-supervised epochs of the nowcaster on every training-period window, labels unused
    ema: float = 0.0  # decay of the weights' moving average that validation scores and training keeps (0 = off)
    # inputs as deviations from each host's own median (predictor/host_baseline.py), fitted on
    # the intervals before the test split
    host_baseline: bool = False
    members: int = 1  # FT-MoE family: networks in a deep ensemble, seeds seed..seed+members-1, probabilities averaged
    log_epochs: bool = False  # one line per epoch on stderr even without progress bars
    max_train_windows: int | None = None  # subsample for quick runs (CI)
    overrides: dict[str, Any] = field(default_factory=dict)  # architecture fields
    # rule baselines: their feature roles (cpu_utilisation, ...) -> "COLUMN", "COLUMN/SCALE",
    # "none" (leave that part of the rule out) or "auto" (the column best on validation)
    feature_map: dict[str, str] = field(default_factory=dict)


class Predictor(ABC):
    kind: ClassVar[str]
    normalises: ClassVar[bool] = False  # its inputs go through a Normaliser (options.normalisation applies)
    # learns from its inputs, so --host-baseline applies (rules compare raw values with fixed cut-offs)
    takes_host_baseline: ClassVar[bool] = True

    def __init__(self) -> None:
        self.feature_names: list[str] = []
        self.class_names: list[str] = []
        self.window = 1
        self.lead = 1
        self.horizon = 1
        self.threshold = 0.5
        self.calibrator = Calibrator()
        self.info: dict[str, Any] = {}
        self.host_baseline: HostBaseline | None = None

    @abstractmethod
    def fit(self, ds: Dataset, splits: Splits, options: TrainOptions, progress: bool = True) -> dict[str, Any]:
        """Train on ``splits.train`` windows (``splits.val`` only for early stopping);
        returns the history. Calibration and the threshold are fitted by ``fit_model``
        afterwards, on validation windows, the same way for every model type."""

    @abstractmethod
    def raw_predict(self, features: np.ndarray, migrations: np.ndarray, ends: np.ndarray) -> Prediction:
        """Raw features [T, H, F] (in this model's feature order), migrations [M, 3]; one
        uncalibrated score per window end in ``ends`` and host."""

    def predict_arrays(self, features: np.ndarray, migrations: np.ndarray, ends: np.ndarray) -> Prediction:
        """Calibrated: ``fault_probability`` is P(a fault starts or is under way within
        [end+lead, end+lead+horizon-1]), as far as validation could tell."""
        raw = self.raw_predict(features, migrations, ends)
        return Prediction(np.asarray(self.calibrator(raw.fault_probability), dtype=np.float64), raw.type_probability, self.threshold)

    def targets(self, ds: Dataset, ends: np.ndarray) -> np.ndarray:
        """[N, H] target classes of the windows ending at ``ends``."""
        from ftmoe.predictor.data import targets

        return targets(ds.labels, self.lead, self.horizon)[np.asarray(ends)]

    def inputs(self, ds: Dataset) -> tuple[np.ndarray, np.ndarray]:
        """The dataset's features in this model's feature order, and its migrations."""
        from ftmoe.predictor.data import check_features

        cols = check_features(ds, self.feature_names)
        return self.prepare(ds.features[:, :, cols], ds.host_names), ds.migrations

    def prepare(self, features: np.ndarray, hosts: list[str]) -> np.ndarray:
        """Raw features [T, H, F] of ``hosts`` as this model reads them: deviations from each
        host's baseline when it was trained with one, else unchanged. ``predict_arrays`` and
        ``raw_predict`` take prepared features."""
        return features if self.host_baseline is None else self.host_baseline(features, hosts)

    def predict(self, ds: Dataset, ends: np.ndarray) -> Prediction:
        return self.predict_arrays(*self.inputs(ds), ends)

    # -- files ------------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """JSON-serialisable extra state of the subclass."""
        return {}

    def load_state(self, state: dict[str, Any], folder: Path) -> None:
        del state, folder

    def save(self, folder: str | Path) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        doc = {
            "kind": self.kind,
            "ftmoe_version": __version__,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "feature_names": self.feature_names,
            "class_names": self.class_names,
            "window": self.window,
            "lead": self.lead,
            "horizon": self.horizon,
            "threshold": self.threshold,
            "calibration": self.calibrator.to_dict(),
            "info": self.info,
            "state": self.state(),
            **({"host_baseline": self.host_baseline.to_dict()} if self.host_baseline is not None else {}),
        }
        self.save_weights(folder)
        (folder / CONFIG_FILE).write_text(json.dumps(doc, indent=2))
        return folder

    def save_weights(self, folder: Path) -> None:  # noqa: B027 - an optional hook: a model without tensors writes nothing
        """Subclasses with tensors write WEIGHTS_FILE here."""


def average_precision(prob: np.ndarray, positive: np.ndarray) -> float:
    """PR-AUC (average precision) of scores against bool labels; 0 without positives."""
    from sklearn.metrics import average_precision_score

    y = np.asarray(positive).ravel()
    return float(average_precision_score(y, np.asarray(prob).ravel())) if y.any() else 0.0


def best_threshold(prob: np.ndarray, faulty: np.ndarray) -> float:
    """The probability cut-off with the best F1 on held-out data (exact, over every
    distinct score)."""
    p, t = np.asarray(prob, dtype=np.float64).ravel(), np.asarray(faulty).ravel().astype(bool)
    if not t.any() or t.all():
        return 0.5
    from sklearn.metrics import precision_recall_curve

    precision, recall, thresholds = precision_recall_curve(t, p)
    f1 = 2 * precision[:-1] * recall[:-1] / np.clip(precision[:-1] + recall[:-1], 1e-12, None)
    return float(thresholds[int(np.argmax(f1))])


def fit_model(model: Predictor, ds: Dataset, splits: Splits, options: TrainOptions, progress: bool = True) -> dict[str, Any]:
    """The protocol every model type goes through: train on the training windows, then fit
    the calibration and the alarm threshold on the validation windows (never on windows
    it trained on, never on the test windows)."""
    from ftmoe.predictor import calibration

    if len(splits.val) == 0:
        raise ValueError("no validation windows: the calibration and the threshold must be fitted out of sample")
    if options.normalisation == "auto":
        return fit_normalisation_by_validation(model, ds, splits, options, progress)
    model.horizon = options.horizon  # before fit: targets() asks the model's own question
    baseline = None
    if options.host_baseline:
        if not model.takes_host_baseline:
            raise ValueError(f"--host-baseline: {model.kind} compares raw values with fixed cut-offs; use a learned model type")
        baseline = HostBaseline.fit(ds.features[: fitting_end(splits, ds.shape[0])], ds.host_names)
    seen = ds if baseline is None else replace(ds, features=baseline(ds.features, ds.host_names))
    history = model.fit(seen, splits, options, progress=progress)
    # set after fit, which reads the deviations it was given: every later caller passes raw features
    model.host_baseline = baseline
    raw = model.raw_predict(*model.inputs(ds), splits.val).fault_probability
    positive = model.targets(ds, splits.val) > 0
    model.calibrator = calibration.fit(raw, positive, options.calibration)
    prob = model.calibrator(raw)
    model.threshold = best_threshold(prob, positive)
    model.info.update(
        {
            "horizon": model.horizon,
            "calibration": options.calibration,
            "validation": {
                "windows": int(len(splits.val)),
                "positives": int(positive.sum()),
                # the score to choose between variants by: the test split is for reporting only
                "pr_auc": average_precision(prob, positive),
                "ece": calibration.ece(prob, positive),
                "share": splits.val_share or None,
                "notes": list(splits.notes),
            },
        }
    )
    return history


def fit_normalisation_by_validation(model: Predictor, ds: Dataset, splits: Splits, options: TrainOptions, progress: bool) -> dict[str, Any]:
    """``--normalisation auto``: a network is trained once per input normalisation and the one
    with the higher calibrated validation PR-AUC is kept, as early stopping keeps an epoch.
    Models that do not normalise their inputs train once."""
    if not model.normalises:
        return fit_model(model, ds, splits, replace(options, normalisation="zscore"), progress)
    say = progress or options.log_epochs
    tried: list[tuple[str, Predictor, dict[str, Any]]] = []
    for i, method in enumerate(AUTO_NORMALISATIONS, 1):
        if say:
            print(f"--normalisation auto: training with {method} inputs ({i} of {len(AUTO_NORMALISATIONS)})", file=sys.stderr, flush=True)
        candidate = type(model)()
        tried.append((method, candidate, fit_model(candidate, ds, splits, replace(options, normalisation=method), progress)))
    scores = {method: candidate.info["validation"]["pr_auc"] for method, candidate, _ in tried}
    # the higher validation PR-AUC; a tie (or no score) keeps the first, zscore
    method, best, history = max(tried, key=lambda t: scores[t[0]] if math.isfinite(scores[t[0]]) else -1.0)
    model.__dict__.update(best.__dict__)
    model.info["normalisation"] = {"chosen": method, "validation_pr_auc": scores}
    if say:
        print(
            f"--normalisation auto: kept {method} (validation PR-AUC " + ", ".join(f"{m} {s:.3f}" for m, s in scores.items()) + ")",
            file=sys.stderr,
            flush=True,
        )
    return history
