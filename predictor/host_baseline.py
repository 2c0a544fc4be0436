"""Each host's own normal: features as robust deviations from the host's median.

A fault shows as a host leaving its own normal, and hosts differ in what normal is: a
database pod's memory level is another service's alarm, and one server's steady CPU is
another's spike. A model that sees raw values (or values scaled fleet-wide) must learn every
host's level before it can see a departure from it; with a few dozen labelled faults it
cannot. ``HostBaseline`` keeps, per host h and feature f, the median and the interquartile
range over the intervals it was fitted on, and maps

    x'[t, h, f] = (x[t, h, f] - median[h, f]) / max(IQR[h, f], floor[f])

    features [T, H, F] -> [T, H, F], the host axis named by ``hosts`` [H].

``floor[f]`` is 5 % of the feature's pooled standard deviation: a host whose feature never
moved while the baseline was fitted would otherwise turn noise into huge deviations. A host
the baseline was not fitted on (a node that joined later, a pod created after the fitting
period) gets the pooled median and IQR of every host's values, which makes its inputs a
fleet-wide robust z-score. Median and IQR rather than mean and std: the fitting period holds
faults too, and they must not move the normal they are measured against.

Fitted by ``fit_model`` on the intervals before the test split (features only, never labels,
never a scored interval) and saved in the model file."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

FLOOR_SHARE = 0.05  # of a feature's pooled std: the smallest IQR a deviation is divided by


@dataclass
class HostBaseline:
    hosts: list[str]
    median: np.ndarray  # [H, F]
    scale: np.ndarray  # [H, F], the IQR, at least the floor
    pooled_median: np.ndarray  # [F], for hosts not fitted on
    pooled_scale: np.ndarray  # [F]

    def __post_init__(self) -> None:
        # looked up every interval for thousands of nodes: built once, not per call
        self._row = {h: i for i, h in enumerate(self.hosts)}

    @classmethod
    def fit(cls, features: np.ndarray, hosts: Sequence[str]) -> HostBaseline:
        """From ``features`` [T, H, F]; non-finite values (a pod not yet created) are skipped,
        and a host with no finite value for a feature takes the pooled figures for it."""
        x = np.asarray(features, dtype=np.float64)
        if x.ndim != 3 or x.shape[1] != len(hosts):
            raise ValueError(f"host baseline: features {x.shape} do not match {len(hosts)} host names")
        if x.shape[0] == 0:
            raise ValueError("host baseline: no intervals to fit on")
        x = np.where(np.isfinite(x), x, np.nan)  # +-inf skipped like NaN
        flat = x.reshape(-1, x.shape[2])
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a host with no finite value: pooled, below
            floor = FLOOR_SHARE * np.nan_to_num(np.nanstd(flat, axis=0)) + 1e-6
            p25, p50, p75 = np.nanpercentile(flat, [25, 50, 75], axis=0)
            h25, h50, h75 = np.nanpercentile(x, [25, 50, 75], axis=0)  # [H, F]
        pooled_median, pooled_scale = np.nan_to_num(p50), np.maximum(np.nan_to_num(p75 - p25), floor)
        seen = np.isfinite(h50)
        median = np.where(seen, h50, pooled_median)
        scale = np.where(seen, np.maximum(np.nan_to_num(h75 - h25), floor), pooled_scale)
        return cls(list(hosts), median, scale, pooled_median, pooled_scale)

    def __call__(self, features: np.ndarray, hosts: Sequence[str]) -> np.ndarray:
        """``features`` [T, H', F] of the hosts named ``hosts`` [H'] as deviations [T, H', F]."""
        median, scale = self.lookup(hosts)
        return ((np.asarray(features, dtype=np.float64) - median) / scale).astype(np.float32)

    def lookup(self, hosts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Median and scale [H', F] for ``hosts``: each host's own, or the pooled ones."""
        rows = np.array([self._row.get(h, -1) for h in hosts], dtype=np.int64)
        known = (rows >= 0)[:, None]
        median = np.where(known, self.median[np.maximum(rows, 0)], self.pooled_median)
        scale = np.where(known, self.scale[np.maximum(rows, 0)], self.pooled_scale)
        return median, scale

    def known(self, hosts: Sequence[str]) -> int:
        """How many of ``hosts`` have a baseline of their own."""
        return sum(h in self._row for h in hosts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "hosts": list(self.hosts),
            "median": self.median.tolist(),
            "scale": self.scale.tolist(),
            "pooled_median": self.pooled_median.tolist(),
            "pooled_scale": self.pooled_scale.tolist(),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> HostBaseline:
        median, scale = np.asarray(d["median"], np.float64), np.asarray(d["scale"], np.float64)
        pooled_median, pooled_scale = np.asarray(d["pooled_median"], np.float64), np.asarray(d["pooled_scale"], np.float64)
        hosts = [str(h) for h in d["hosts"]]
        F = len(pooled_median)
        if median.shape != (len(hosts), F) or scale.shape != (len(hosts), F) or pooled_scale.shape != (F,):
            raise ValueError(f"host_baseline: median {median.shape} and scale {scale.shape} must be [{len(hosts)} hosts, {F} features]")
        if not (np.all(scale > 0) and np.all(pooled_scale > 0)):
            raise ValueError("host_baseline: every scale must be positive")
        return cls(hosts, median, scale, pooled_median, pooled_scale)
