"""Turning a model's raw score into a probability, fitted on validation windows only.

    Platt:    P(fault within the horizon | s) = sigmoid(a * z(s) + b)
              z(s) = logit(s) for scores in [0, 1], else (s - mean) / std of the validation scores
    isotonic: a monotone step function from score to the validation positives' rate

and the measures of how well a probability means what it says: expected calibration
error (ECE: the gap between mean predicted and observed rate, weighted over bins of
predicted probability) and the Brier score.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

METHODS = ("platt", "isotonic", "none")
EPS = 1e-6


@dataclass
class Calibrator:
    method: str = "none"
    transform: str = "logit"  # "logit" | "standard"
    a: float = 1.0
    b: float = 0.0
    mean: float = 0.0
    std: float = 1.0
    x: list[float] = field(default_factory=list)  # isotonic knots
    y: list[float] = field(default_factory=list)

    def _z(self, s: np.ndarray) -> np.ndarray:
        s = np.asarray(s, dtype=np.float64)
        if self.transform == "logit":
            p = np.clip(s, EPS, 1 - EPS)
            return np.log(p / (1 - p))
        return (s - self.mean) / self.std

    def __call__(self, score: np.ndarray) -> np.ndarray:
        if self.method == "none":
            return np.asarray(score)
        if self.method == "isotonic":
            return np.interp(np.asarray(score, dtype=np.float64), self.x, self.y).astype(np.float64)
        return 1.0 / (1.0 + np.exp(-(self.a * self._z(score) + self.b)))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> Calibrator:
        return cls(**d) if d else cls()


def fit(score: np.ndarray, positive: np.ndarray, method: str = "platt") -> Calibrator:
    """Fit on validation host-windows: ``score`` raw, ``positive`` bool, same shape."""
    if method not in METHODS:
        raise ValueError(f"calibration {method!r}: choose one of {', '.join(METHODS)}")
    s = np.asarray(score, dtype=np.float64).ravel()
    y = np.asarray(positive).ravel().astype(bool)
    if method == "none" or y.all() or not y.any():
        return Calibrator()
    if method == "isotonic":
        from sklearn.isotonic import IsotonicRegression

        iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(s, y.astype(float))
        return Calibrator("isotonic", x=[float(v) for v in iso.X_thresholds_], y=[float(v) for v in iso.y_thresholds_])
    from sklearn.linear_model import LogisticRegression

    transform = "logit" if s.min() >= 0 and s.max() <= 1 else "standard"
    cal = Calibrator("platt", transform, mean=float(s.mean()), std=float(s.std()) or 1.0)
    z = cal._z(s).reshape(-1, 1)
    lr = LogisticRegression(C=1e4, max_iter=1000).fit(z, y)
    cal.a, cal.b = float(lr.coef_[0, 0]), float(lr.intercept_[0])
    return cal


def ece(prob: np.ndarray, positive: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error over equal-width bins of predicted probability."""
    p = np.asarray(prob, dtype=np.float64).ravel()
    y = np.asarray(positive).ravel().astype(float)
    if p.size == 0:
        return float("nan")
    idx = np.minimum((p * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        sel = idx == b
        if sel.any():
            total += sel.sum() / p.size * abs(p[sel].mean() - y[sel].mean())
    return float(total)


def brier(prob: np.ndarray, positive: np.ndarray) -> float:
    p = np.asarray(prob, dtype=np.float64).ravel()
    return float(np.mean((p - np.asarray(positive).ravel().astype(float)) ** 2)) if p.size else float("nan")


def reliability(prob: np.ndarray, positive: np.ndarray, bins: int = 10) -> list[dict[str, float]]:
    """Per bin: its range, host-windows, mean predicted probability and observed rate."""
    p = np.asarray(prob, dtype=np.float64).ravel()
    y = np.asarray(positive).ravel().astype(float)
    idx = np.minimum((p * bins).astype(int), bins - 1)
    out = []
    for b in range(bins):
        sel = idx == b
        out.append(
            {
                "lo": b / bins,
                "hi": (b + 1) / bins,
                "count": int(sel.sum()),
                "predicted": float(p[sel].mean()) if sel.any() else float("nan"),
                "observed": float(y[sel].mean()) if sel.any() else float("nan"),
            }
        )
    return out


def plot_reliability(table: list[dict[str, float]], path: str | Path, title: str) -> Path:
    """A reliability diagram (PNG). matplotlib is a dev extra: say so when it is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as err:
        raise ValueError("--plot needs matplotlib: pip install 'ftmoe-operator[dev]' or pip install matplotlib") from err
    path = Path(path)
    fig, (ax, ax2) = plt.subplots(2, 1, figsize=(5, 6), height_ratios=[3, 1], sharex=True)
    rows = [r for r in table if r["count"]]
    ax.plot([0, 1], [0, 1], "--", color="grey", label="perfect")
    ax.plot([r["predicted"] for r in rows], [r["observed"] for r in rows], "o-", label="model")
    ax.set_ylabel("observed fault rate")
    ax.set_title(title, fontsize=9)
    ax.legend(loc="upper left")
    ax2.bar([(r["lo"] + r["hi"]) / 2 for r in table], [max(r["count"], 0.5) for r in table], width=0.09, log=True)
    ax2.set_xlabel("predicted probability")
    ax2.set_ylabel("host-windows")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
