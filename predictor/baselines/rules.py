"""Threshold and trend rules: the DFTM/PCFT/ECLB style on CPU, and PromQL predict_linear.

Each rule turns a window into a score per host; like every model type, its calibration
and threshold are then fitted on the validation windows (``fit_model``). None of them
types faults beyond what its rule implies.

The rules are written for the simulator's feature names. On other data, ``--features
ROLE=COLUMN[/SCALE]`` maps each role (``cpu_utilisation``, ``memory_used_fraction``,
``disk_used_fraction``) to a column of the dataset, divided by SCALE (100 for a percent);
``ROLE=none`` leaves that part of a rule out and ``ROLE=auto`` takes the column whose rule
score ranks the validation windows best (average precision).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ftmoe.contract.dataset import Dataset
from ftmoe.predictor.base import Prediction, Predictor, TrainOptions
from ftmoe.predictor.baselines.common import trend, windows
from ftmoe.predictor.data import Splits

ROLES = ("cpu_utilisation", "memory_used_fraction", "disk_used_fraction")


class RulePredictor(Predictor):
    """A rule with no learned weights: only its threshold (and window) are fitted."""

    kind: ClassVar[str] = "rule"
    needs: ClassVar[tuple[str, ...]] = ("cpu_utilisation",)
    takes_host_baseline: ClassVar[bool] = False  # its cut-offs are on raw values (90 % CPU)

    def scores(self, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """w [N, W, H, F] raw -> (score [N, H], type probability [N, H, K])."""
        raise NotImplementedError

    def _uniform(self, n: int, h: int) -> np.ndarray:
        k = len(self.class_names) - 1
        return np.full((n, h, k), 1.0 / k)

    def _type_for(self, name: str, n: int, h: int) -> np.ndarray:
        if name not in self.class_names:  # another dataset's classes: the rule cannot type
            return self._uniform(n, h)
        p = np.zeros((n, h, len(self.class_names) - 1))
        p[..., self.class_names.index(name) - 1] = 1.0
        return p

    def __init__(self) -> None:
        super().__init__()
        self.roles: dict[str, tuple[int, float] | None] = {}  # role -> (column, scale) or None

    def fit(self, ds: Dataset, splits: Splits, options: TrainOptions, progress: bool = True) -> dict[str, Any]:
        self.feature_names = list(ds.feature_names)
        self.class_names = list(ds.class_names)
        self.window, self.lead = options.window, options.lead
        unknown = sorted(set(options.feature_map) - set(ROLES))
        if unknown:
            raise ValueError(f"--features {', '.join(unknown)}: the rules' roles are {', '.join(ROLES)}")
        self.roles = {}
        auto = []
        for role in self.needs:
            spec = options.feature_map.get(role, role)
            if spec == "auto":
                auto.append(role)
                self.roles[role] = None
            else:
                self.roles[role] = parse_role(role, spec, self.feature_names)
        for role in auto:
            self.roles[role] = self._best_column(role, ds, splits)
        if all(v is None for v in self.roles.values()):
            raise ValueError(f"{self.kind}: every feature role is 'none'; map at least one with --features ROLE=COLUMN")
        self.info = {
            "roles": {r: None if v is None else {"column": self.feature_names[v[0]], "scale": v[1]} for r, v in self.roles.items()}
        }
        return dict(self.info)

    def _best_column(self, role: str, ds: Dataset, splits: Splits) -> tuple[int, float]:
        from sklearn.metrics import average_precision_score

        positive = (self.targets(ds, splits.val) > 0).ravel()
        best, best_ap = (0, 1.0), -1.0
        w = windows(ds.features, splits.val, self.window)
        for c in range(ds.shape[2]):
            self.roles[role] = (c, 1.0)
            score = self.scores(w)[0].ravel()
            ap = float(average_precision_score(positive, score)) if positive.any() and np.isfinite(score).all() else 0.0
            if ap > best_ap:
                best, best_ap = (c, 1.0), ap
        return best

    def raw_predict(self, features: np.ndarray, migrations: np.ndarray, ends: np.ndarray) -> Prediction:
        score, types = self.scores(windows(features, np.asarray(ends), self.window))
        return Prediction(score, types, self.threshold)

    def value(self, w: np.ndarray, role: str) -> np.ndarray | None:
        """The role's series [N, W, H] from a raw window, scaled; None when mapped to none."""
        if role in self.roles:
            mapped = self.roles[role]
        else:  # model files from before roles: the simulator's names
            mapped = (self.feature_names.index(role), 1.0)
        if mapped is None:
            return None
        c, scale = mapped
        return w[..., c] / scale

    def state(self) -> dict[str, Any]:
        return {"roles": {r: None if v is None else [v[0], v[1]] for r, v in self.roles.items()}}

    def load_state(self, state: dict[str, Any], folder: Path) -> None:
        del folder
        self.roles = {r: None if v is None else (int(v[0]), float(v[1])) for r, v in state.get("roles", {}).items()}


class DFTM(RulePredictor):
    """DFTM style: a host is failing when its current CPU load crosses a threshold."""

    kind = "dftm"

    def scores(self, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        cpu = self.value(w, "cpu_utilisation")
        assert cpu is not None
        s = cpu[:, -1]
        return s, self._type_for("cpu", *s.shape)


class PCFT(RulePredictor):
    """PCFT style: extrapolate the CPU trend over the window to the target interval."""

    kind = "pcft"

    def scores(self, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        cpu = self.value(w, "cpu_utilisation")
        assert cpu is not None
        s = cpu[:, -1] + trend(cpu) * self.lead
        return s, self._type_for("cpu", *s.shape)


class ECLB(RulePredictor):
    """ECLB style: an exponentially smoothed CPU load (recent intervals weigh more)."""

    kind = "eclb"

    def scores(self, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        cpu = self.value(w, "cpu_utilisation")
        assert cpu is not None
        weights = 0.5 ** np.arange(cpu.shape[1])[::-1]
        s = np.tensordot(weights / weights.sum(), cpu, axes=(0, 1))
        return s, self._type_for("cpu", *s.shape)


class PromQLRules(RulePredictor):
    """What admins run today: ``predict_linear`` alerts.

    memory: predict_linear(memory_used_fraction[W], lead) >= 1 - margin
    disk:   predict_linear(disk_used_fraction[W], lead) >= 1 - margin
    cpu:    avg_over_time(cpu_utilisation[W]) >= 1 - margin
    The score is the largest projection; the fault type is the rule that scored it. The
    single threshold stands for the alert's margin, fitted like the others.
    """

    kind = "promql"
    needs = ("cpu_utilisation", "memory_used_fraction", "disk_used_fraction")

    def scores(self, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        parts, names = [], []
        for role, name in (("cpu_utilisation", "cpu"), ("memory_used_fraction", "memory"), ("disk_used_fraction", "disk")):
            v = self.value(w, role)
            if v is None:
                continue
            parts.append(v.mean(axis=1) if name == "cpu" else v[:, -1] + trend(v) * self.lead)
            names.append(name)
        proj = np.stack(parts, axis=-1)
        best = proj.argmax(axis=-1)
        types = np.zeros((*best.shape, len(self.class_names) - 1))
        for i, name in enumerate(names):
            if name in self.class_names:
                types[..., self.class_names.index(name) - 1] += best == i
        if not types.sum(axis=-1).all():  # classes of another dataset: no type from the rule
            types = np.where(types.sum(axis=-1, keepdims=True) > 0, types, 1.0 / types.shape[-1])
        return proj.max(axis=-1), types


def parse_role(role: str, spec: str, feature_names: list[str]) -> tuple[int, float] | None:
    """'COLUMN' | 'COLUMN/SCALE' | 'none' -> (column index, scale) or None."""
    if spec == "none":
        return None
    name, _, scale = spec.partition("/")
    try:
        factor = float(scale) if scale else 1.0
    except ValueError:
        raise ValueError(f"--features {role}={spec}: SCALE must be a number, e.g. {role}={name}/100") from None
    if factor == 0:
        raise ValueError(f"--features {role}={spec}: SCALE must not be 0")
    if name not in feature_names:
        shown = ", ".join(feature_names[:6]) + (", ..." if len(feature_names) > 6 else "")
        raise ValueError(
            f"the rule needs the feature {role!r}, which the dataset lacks as {name!r}; map it with "
            f"--features {role}=COLUMN (one of {shown}), {role}=auto or {role}=none"
        )
    return feature_names.index(name), factor
