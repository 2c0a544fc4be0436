"""The LLM fault-tolerance seed's predictor: P(fault) = sigmoid(w.x + b), warning when
P > theta. Logistic regression on the current interval's normalised features; theta is
fitted for the best F1. It does not type faults (uniform type probabilities)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from ftmoe.contract.dataset import Dataset
from ftmoe.predictor.base import WEIGHTS_FILE, Prediction, Predictor, TrainOptions
from ftmoe.predictor.data import Normaliser, Splits


class SeedMLP(Predictor):
    kind = "mlp"
    normalises = True

    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(1, 1)
        self.normaliser: Normaliser | None = None

    def _x(self, features: np.ndarray, ends: np.ndarray) -> torch.Tensor:
        assert self.normaliser is not None
        return torch.from_numpy(self.normaliser(features[ends]))  # [N, H, F]

    def fit(self, ds: Dataset, splits: Splits, options: TrainOptions, progress: bool = True) -> dict[str, Any]:
        torch.manual_seed(options.seed)
        self.feature_names, self.class_names = list(ds.feature_names), list(ds.class_names)
        self.window, self.lead = 1, options.lead
        self.normaliser = Normaliser.fit(ds.features[: int(splits.train.max()) + 1], options.normalisation)
        x = self._x(ds.features, splits.train)
        x = x.reshape(-1, x.shape[-1])  # the normaliser's width: F, or 2F with both
        y = torch.from_numpy((self.targets(ds, splits.train) > 0).astype(np.float32)).reshape(-1)
        self.linear = torch.nn.Linear(x.shape[-1], 1)
        opt = torch.optim.LBFGS(self.linear.parameters(), max_iter=200)
        pos = float(y.mean())
        weight = torch.tensor((1 - pos) / max(pos, 1e-6))

        def closure() -> torch.Tensor:
            opt.zero_grad()
            loss = torch.nn.functional.binary_cross_entropy_with_logits(self.linear(x).squeeze(-1), y, pos_weight=weight.sqrt())
            loss = loss + 1e-4 * self.linear.weight.pow(2).sum()
            loss.backward()
            return loss

        opt.step(closure)
        return {"features": x.shape[-1]}

    @torch.no_grad()
    def raw_predict(self, features: np.ndarray, migrations: np.ndarray, ends: np.ndarray) -> Prediction:
        p = torch.sigmoid(self.linear(self._x(features, np.asarray(ends)))).squeeze(-1).numpy()
        k = len(self.class_names) - 1
        return Prediction(p, np.full((*p.shape, k), 1.0 / k), self.threshold)

    def state(self) -> dict[str, Any]:
        assert self.normaliser is not None
        return {"normalisation": self.normaliser.to_dict(), "features": self.linear.in_features}

    def save_weights(self, folder: Path) -> None:
        save_file({k: v.contiguous() for k, v in self.linear.state_dict().items()}, str(folder / WEIGHTS_FILE))

    def load_state(self, state: dict[str, Any], folder: Path) -> None:
        self.normaliser = Normaliser(**state["normalisation"])
        self.linear = torch.nn.Linear(int(state["features"]), 1)
        self.linear.load_state_dict(load_file(str(folder / WEIGHTS_FILE)))
