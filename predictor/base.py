"""The interface every predictor implements (FT-MoE and each baseline), and model files.

A model folder holds ``config.json`` (kind, version, feature and class names, window,
lead, threshold, normalisation, architecture, training metrics) and, for models with
tensors, ``model.safetensors``. Loading reads JSON and safetensors only: never a pickle.
"""

from __future__ import annotations

import json
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ftmoe import __version__
from ftmoe.predictor.data import Splits
from ftmoe.predictor.errors import ModelFileError
from ftmoe.simulator.dataset import Dataset

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
    epochs: int = 30
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-2
    lr_step: int = 10  # x0.1 every 10 epochs, as the paper
    lr_gamma: float = 0.1
    patience: int = 6  # early stopping on validation F1
    seed: int = 0
    max_train_windows: int | None = None  # subsample for quick runs (CI)
    overrides: dict[str, Any] = field(default_factory=dict)  # architecture fields


class Predictor(ABC):
    kind: ClassVar[str]

    def __init__(self) -> None:
        self.feature_names: list[str] = []
        self.class_names: list[str] = []
        self.window = 1
        self.lead = 1
        self.threshold = 0.5
        self.info: dict[str, Any] = {}

    @abstractmethod
    def fit(self, ds: Dataset, splits: Splits, options: TrainOptions, progress: bool = True) -> dict[str, Any]:
        """Train on ``splits.train`` windows, tune on ``splits.val``; returns the history."""

    @abstractmethod
    def predict_arrays(self, features: np.ndarray, migrations: np.ndarray, ends: np.ndarray) -> Prediction:
        """Raw features [T, H, F] (in this model's feature order), migrations [M, 3]; one
        prediction per window end in ``ends`` for the interval end + lead."""

    def predict(self, ds: Dataset, ends: np.ndarray) -> Prediction:
        from ftmoe.predictor.data import check_features

        cols = check_features(ds, self.feature_names)
        return self.predict_arrays(ds.features[:, :, cols], ds.migrations, ends)

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
            "threshold": self.threshold,
            "info": self.info,
            "state": self.state(),
        }
        self.save_weights(folder)
        (folder / CONFIG_FILE).write_text(json.dumps(doc, indent=2))
        return folder

    def save_weights(self, folder: Path) -> None:
        """Subclasses with tensors write WEIGHTS_FILE here."""


def load(folder: str | Path) -> Predictor:
    from ftmoe.predictor.registry import predictor_class

    folder = Path(folder)
    path = folder / CONFIG_FILE
    if not path.is_file():
        raise ModelFileError(f"{path}: no such file; a model folder holds {CONFIG_FILE} (and {WEIGHTS_FILE})")
    try:
        doc = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ModelFileError(f"{path}: not valid JSON ({err})") from err
    for key in ("kind", "feature_names", "class_names", "window", "lead", "threshold", "state"):
        if key not in doc:
            raise ModelFileError(f"{path}: missing key {key!r}")
    cls = predictor_class(doc["kind"])
    model = cls()
    model.feature_names = list(doc["feature_names"])
    model.class_names = list(doc["class_names"])
    model.window = int(doc["window"])
    model.lead = int(doc["lead"])
    model.threshold = float(doc["threshold"])
    model.info = dict(doc.get("info", {}))
    from safetensors import SafetensorError

    try:
        model.load_state(doc["state"], folder)
    except (KeyError, ValueError, RuntimeError, OSError, SafetensorError) as err:
        raise ModelFileError(f"{folder}: cannot load the {doc['kind']} model ({type(err).__name__}: {err})") from err
    return model


def best_threshold(prob: np.ndarray, faulty: np.ndarray) -> float:
    """The probability cut-off with the best F1 on held-out data."""
    p, t = prob.ravel(), faulty.ravel().astype(bool)
    if not t.any():
        return 0.5
    best, best_f1 = 0.5, -1.0
    for th in np.unique(np.quantile(p, np.linspace(0.5, 0.995, 100))):
        pred = p >= th
        tp = (pred & t).sum()
        f1 = 2 * tp / (pred.sum() + t.sum()) if pred.sum() + t.sum() else 0.0
        if f1 > best_f1:
            best, best_f1 = float(th), float(f1)
    return best
