"""Impossible and unseen inputs get no prediction, so no action (the values an attack used)."""

from __future__ import annotations

import numpy as np
import pytest

from ftmoe.operator.input_checks import MAX_ZSCORE, invalid_inputs, out_of_distribution

FEATURES = ["cpu_utilisation", "cpu_frequency_ratio", "disk_used_fraction", "network_receive_bytes_per_second", "gpu_temp"]
HEALTHY = [0.4, 0.9, 0.5, 1e6, 60.0]


def window(**overrides: float) -> np.ndarray:
    values = np.tile(np.array(HEALTHY, dtype=np.float64), (3, 2, 1))  # [W=3, H=2, F]
    for name, value in overrides.items():
        values[-1, 1, FEATURES.index(name)] = value
    return values


def test_a_healthy_window_passes() -> None:
    assert invalid_inputs(window(), ["a", "b"], FEATURES, np.array([True, True])) == {}
    assert invalid_inputs(window(cpu_utilisation=1.02), ["a", "b"], FEATURES, np.array([True, True])) == {}, "rate() slack"
    assert invalid_inputs(window(cpu_utilisation=-0.006), ["a", "b"], FEATURES, np.array([True, True])) == {}, "seen live"


@pytest.mark.parametrize(
    ("feature", "value"),
    [
        ("disk_used_fraction", 2.0),
        ("cpu_frequency_ratio", -0.3),
        ("cpu_utilisation", 1e20),
        ("network_receive_bytes_per_second", -1e39),
        ("gpu_temp", 1e39),
    ],
)
def test_impossible_values_withhold_the_node_and_say_which(feature: str, value: float) -> None:
    out = invalid_inputs(window(**{feature: value}), ["a", "b"], FEATURES, np.array([True, True]))
    assert list(out) == ["b"] and feature in out["b"] and out["b"].startswith("invalid-input")


def test_only_candidates_are_checked() -> None:
    assert invalid_inputs(window(disk_used_fraction=2.0), ["a", "b"], FEATURES, np.array([True, False])) == {}


def test_far_outside_the_training_data_is_out_of_distribution() -> None:
    z = np.array([[1.0, -3.0], [0.5, -(MAX_ZSCORE + 1)]])
    out = out_of_distribution(z, ["a", "b"], ["x", "y"])
    assert list(out) == ["b"] and "y" in out["b"] and out["b"].startswith("out-of-distribution")


@pytest.mark.parametrize("method", ["zscore", "quantile"])
def test_a_model_with_quantile_inputs_still_sees_how_far_out_an_input_is(method: str) -> None:
    """The quantile map bounds a model's inputs at +-3.3; the drivers and this check read
    z-scores against the training statistics instead, which a far input still exceeds."""
    from types import SimpleNamespace

    from ftmoe.operator.inference import zscores
    from ftmoe.predictor.data import Normaliser

    rng = np.random.default_rng(0)
    train = np.stack([rng.uniform(0.2, 0.6, 500), rng.normal(60, 2, 500)], axis=-1)[:, None, :]
    model = SimpleNamespace(normaliser=Normaliser.fit(train, method))
    z = zscores(model, np.array([[0.4, 60.0], [0.4, 60.0 + 40 * MAX_ZSCORE]]))  # type: ignore[arg-type]  # only .normaliser is read
    assert list(out_of_distribution(z, ["a", "b"], ["cpu", "temp"])) == ["b"]
