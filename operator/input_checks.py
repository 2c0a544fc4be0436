"""Which nodes' windows the model may be trusted on, before and after it runs.

A window the operator could read completely can still be unusable: a value no machine can
report (a disk 200 % full, a negative frequency ratio, 1e20 CPU), one far outside all the
model saw in training, or a risk the model returned as NaN. Such a node gets no prediction,
so no prediction-driven action and no healthy sample for hysteresis either, and the
reason is written where a human looks: the NodeFaultPrediction, the InputsValid
condition and ``ftmoe_inputs_withheld_total``.
"""

from __future__ import annotations

import math

import numpy as np

from ftmoe.contract.features import BY_NAME

# Training-standard deviations from the training mean beyond which the model has never
# seen anything like the value. Wide on purpose: faults themselves sit several deviations
# out, and a withheld node cannot be protected; this catches units and exporters gone wrong.
MAX_ZSCORE = 50.0
FLOAT32_MAX = float(np.finfo(np.float32).max)

INVALID, OUT_OF_DISTRIBUTION, NON_FINITE_RISK = "invalid-input", "out-of-distribution", "non-finite-risk"


def invalid_inputs(values: np.ndarray, nodes: list[str], features: list[str], candidates: np.ndarray) -> dict[str, str]:
    """node -> why, for the ``candidates`` ([H] bool) whose window holds an impossible value.

    ``values`` is [W, H, F]. Features outside the catalogue (a custom query) are checked
    only for being representable in float32, the model's input type."""
    ranges = [BY_NAME[n].physical_range if n in BY_NAME else (-math.inf, math.inf) for n in features]
    low = np.array([r[0] for r in ranges])
    high = np.array([r[1] for r in ranges])
    # One vectorised pass over [W, H, F]: this runs every interval over every selected node.
    bad = (np.abs(values) > FLOAT32_MAX) | (values < low) | (values > high)
    bad &= np.asarray(candidates, dtype=bool)[None, :, None]
    out: dict[str, str] = {}
    for h in np.flatnonzero(bad.any(axis=(0, 2))):
        f = int(np.flatnonzero(bad[:, h, :].any(axis=0))[0])
        value = float(values[int(np.argmax(bad[:, h, f])), h, f])
        name = features[f]
        where = f"outside its physical range {low[f]:g} to {high[f]:g}" if name in BY_NAME else "too large for the model"
        out[nodes[h]] = f"{INVALID}: {name}={value:g} {where}"
    return out


def out_of_distribution(zscores: np.ndarray, nodes: list[str], features: list[str]) -> dict[str, str]:
    """node -> why, for rows of ``zscores`` ([N, F], against training statistics) beyond MAX_ZSCORE."""
    out: dict[str, str] = {}
    for j, row in enumerate(np.abs(zscores)):
        if len(row) and float(np.nanmax(row)) > MAX_ZSCORE:
            f = int(np.nanargmax(row))
            out[nodes[j]] = f"{OUT_OF_DISTRIBUTION}: {features[f]} is {zscores[j, f]:+.0f} training standard deviations from its mean"
    return out
