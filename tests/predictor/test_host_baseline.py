"""Host baselines: each host's own median and IQR, fitted out of sample, saved with the
model, and applied the same way by `ftmoe evaluate`, the operator and online tuning."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ftmoe.contract.dataset import Dataset
from ftmoe.predictor.base import TrainOptions, fit_model
from ftmoe.predictor.data import TEST, blocked_split, fitting_end
from ftmoe.predictor.host_baseline import FLOOR_SHARE, HostBaseline
from ftmoe.predictor.registry import load, predictor_class


def levels(T: int = 400, seed: int = 0) -> tuple[np.ndarray, list[str]]:
    """Three hosts at levels 0, 10 and 50 with spreads 1.5, 2 and 5; the third host's
    second feature never moves."""
    rng = np.random.default_rng(seed)
    x = np.stack([rng.normal(m, s, size=(T, 2)) for m, s in ((0, 1.5), (10, 2), (50, 5))], axis=1)
    x[:, 2, 1] = 7.0
    return x.astype(np.float32), ["a", "b", "c"]


def test_each_host_is_measured_against_its_own_median_and_iqr() -> None:
    x, hosts = levels()
    b = HostBaseline.fit(x, hosts)
    z = b(x, hosts)
    assert np.allclose(np.median(z[:, :2], axis=0), 0.0, atol=1e-6)
    iqr = np.percentile(z[:, :2], 75, axis=0) - np.percentile(z[:, :2], 25, axis=0)
    assert np.allclose(iqr, 1.0, atol=1e-5)
    # the same raw value is ordinary on one host and far out on another
    same = b(np.full((1, 3, 2), 10.0, np.float32), hosts)[0, :, 0]
    assert abs(same[1]) < 0.1 and same[0] > 4 and same[2] < -4


def test_a_feature_that_never_moved_is_divided_by_the_floor_not_by_zero() -> None:
    x, hosts = levels()
    b = HostBaseline.fit(x, hosts)
    floor = FLOOR_SHARE * x[..., 1].std() + 1e-6
    assert b.scale[2, 1] == pytest.approx(floor, rel=1e-4)
    out = b(np.full((1, 3, 2), 8.0, np.float32), hosts)
    assert np.isfinite(out).all() and out[0, 2, 1] == pytest.approx(1.0 / floor, rel=1e-4)


def test_a_host_it_was_not_fitted_on_gets_the_pooled_median() -> None:
    x, hosts = levels()
    x[:, 1, :] = np.nan  # host b had no values in the fitting period (a pod created later)
    b = HostBaseline.fit(x, hosts)
    pooled = np.nanmedian(x.reshape(-1, 2), axis=0)
    assert np.allclose(b.median[1], pooled) and np.allclose(b.lookup(["new-node"])[0][0], pooled)
    assert b.known(["a", "new-node", "c"]) == 2


def test_round_trip_and_a_bad_entry_names_the_field() -> None:
    x, hosts = levels()
    b = HostBaseline.fit(x, hosts)
    again = HostBaseline.from_dict(b.to_dict())
    assert np.array_equal(again(x, hosts), b(x, hosts))
    broken = b.to_dict()
    broken["scale"] = broken["scale"][:2]
    with pytest.raises(ValueError, match="host_baseline"):
        HostBaseline.from_dict(broken)


def offset_hosts(T: int = 3000, H: int = 6, seed: int = 0) -> Dataset:
    """Hosts at very different levels; a fault is a ramp of 3 of the host's own spreads."""
    rng = np.random.default_rng(seed)
    level, spread = rng.uniform(0, 100, size=H), rng.uniform(0.5, 5, size=H)
    x = (level[None, :, None] + spread[None, :, None] * rng.normal(size=(T, H, 3))).astype(np.float32)
    labels = np.zeros((T, H), dtype=np.int8)
    for onset in np.sort(rng.choice(np.arange(20, T - 10), 60, replace=False)):
        h = int(rng.integers(H))
        x[onset - 4 : onset + 3, h, 0] += spread[h] * np.linspace(1, 4, 7)
        labels[onset : onset + 3, h] = 1
    return Dataset(x, ["a", "b", "c"], labels, ["none", "fault"], np.zeros((0, 3), np.int32), [f"h{i}" for i in range(H)], 60.0, {})


def test_fit_model_fits_the_baseline_before_the_test_split_and_saves_it(tmp_path: Path) -> None:
    ds = offset_hosts()
    splits = blocked_split(ds.labels, 6, 1, 3)
    model = predictor_class("gbt")()
    fit_model(model, ds, splits, TrainOptions(window=6, horizon=3, host_baseline=True), progress=False)
    end = fitting_end(splits, ds.shape[0])
    assert (splits.assignment[end:] == TEST).any() and not (splits.assignment[:end] == TEST).any()
    assert model.host_baseline is not None
    assert np.allclose(model.host_baseline.median, HostBaseline.fit(ds.features[:end], ds.host_names).median)
    # scored intervals never move it: the test period changed beyond recognition gives the same baseline
    shifted = ds.features.copy()
    shifted[end:] += 1000.0
    assert np.allclose(HostBaseline.fit(shifted[:end], ds.host_names).median, model.host_baseline.median)
    # saved with the model; the loaded model reads raw features the same way
    folder = model.save(tmp_path / "m")
    again = load(folder)
    assert again.host_baseline is not None and again.host_baseline.hosts == ds.host_names
    np.testing.assert_allclose(again.predict(ds, splits.test).fault_probability, model.predict(ds, splits.test).fault_probability)
    from ftmoe.predictor.evaluate import evaluate, format_report

    other = Dataset(ds.features, ds.feature_names, ds.labels, ds.class_names, ds.migrations, ["h0", "h1", *"wxyz"], 60.0, {})
    assert "2/6 hosts against their own median" in format_report("m", evaluate(again, other, splits.test))
    raw_features, _ = again.inputs(ds)
    assert np.allclose(np.median(raw_features[:end], axis=0), 0.0, atol=0.05)  # deviations, not raw levels


def test_rules_refuse_a_host_baseline(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from ftmoe.cli import main

    ds = offset_hosts(T=600)
    splits = blocked_split(ds.labels, 6, 1, 3)
    with pytest.raises(ValueError, match="--host-baseline: dftm"):
        fit_model(predictor_class("dftm")(), ds, splits, TrainOptions(window=6, horizon=3, host_baseline=True), progress=False)
    path = ds.save(tmp_path / "d.npz")
    argv = ["train", "--data", str(path), "--out", str(tmp_path / "x"), "--model-type", "promql", "--host-baseline"]
    assert main(argv) == 1
    assert "--host-baseline: promql compares raw values" in capsys.readouterr().err


def test_the_operator_reads_each_node_against_its_own_baseline() -> None:
    from ftmoe.operator.inference import predict
    from ftmoe.operator.node_metrics import FeatureWindow

    ds = offset_hosts()
    splits = blocked_split(ds.labels, 6, 1, 3)
    model = predictor_class("mlp")()
    fit_model(model, ds, splits, TrainOptions(window=6, horizon=3, host_baseline=True, epochs=2), progress=False)
    assert model.host_baseline is not None
    nodes = ["h2", "h0", "joined-later"]  # two known hosts, in another order, and a new node
    values = np.stack([ds.features[-6:, 2], ds.features[-6:, 0], ds.features[-6:, 4]], axis=1)
    window = FeatureWindow(nodes, np.arange(6.0), values, list(ds.feature_names))
    got = predict(model, window, np.zeros((0, 3), np.int64))
    assert {"h2", "h0"} <= set(got.predictions)
    prepared = model.prepare(values, nodes)
    assert np.allclose(prepared[:, 2], (values[:, 2] - model.host_baseline.pooled_median) / model.host_baseline.pooled_scale)
    want = model.predict_arrays(prepared, np.zeros((0, 3), np.int64), np.array([5])).fault_probability[0]
    for j, node in enumerate(nodes):
        if node in got.predictions:
            assert got.predictions[node].risk == pytest.approx(float(want[j]))
            assert got.predictions[node].drivers[0].value in values[-1, j]  # drivers show raw values
