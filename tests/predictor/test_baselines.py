"""Every baseline trains through the same interface, saves without pickles, reloads to the
same predictions, and does what its rule says."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ftmoe.contract.dataset import Dataset
from ftmoe.predictor.base import Prediction, TrainOptions
from ftmoe.predictor.data import temporal_split
from ftmoe.predictor.registry import kinds, load, predictor_class
from ftmoe.simulator.config import SimConfig
from ftmoe.simulator.generate import simulate
from ftmoe.simulator.traces import load_pool

BASELINES = ["mlp", "dftm", "pcft", "eclb", "promql", "gbt", "cmodlb", "pregan", "pregan_plus", "markov"]


@pytest.fixture(scope="module")
def data() -> Dataset:
    return simulate(SimConfig(hosts=8, intervals=500, seed=4), load_pool())


def test_registry_lists_every_baseline() -> None:
    assert set(BASELINES) | {"ftmoe"} == set(kinds())


@pytest.mark.parametrize("kind", BASELINES)
def test_baseline_fits_saves_and_reloads(kind: str, data: Dataset, tmp_path: Path) -> None:
    options = TrainOptions(window=4, epochs=1, max_train_windows=200, overrides={"hidden": 16, "cmha_heads": 2})
    splits = temporal_split(data.shape[0], options.window)
    model = predictor_class(kind)()
    model.fit(data, splits, options, progress=False)
    pred = model.predict(data, splits.test)
    assert pred.fault_probability.shape == (len(splits.test), 8)
    assert pred.type_probability.shape == (len(splits.test), 8, 3)
    assert np.isfinite(pred.fault_probability).all()
    model.save(tmp_path / kind)
    files = {p.name for p in (tmp_path / kind).iterdir()}
    assert "config.json" in files and not any(f.endswith((".pkl", ".pickle", ".joblib", ".pt")) for f in files)
    again = load(tmp_path / kind)
    assert type(again) is type(model)
    np.testing.assert_allclose(again.predict(data, splits.test).fault_probability, pred.fault_probability, rtol=1e-5, atol=1e-6)


def test_dftm_is_a_threshold_on_current_cpu(data: Dataset) -> None:
    m = predictor_class("dftm")()
    m.fit(data, temporal_split(500, 3), TrainOptions(window=3), progress=False)
    ends = np.arange(10, 20)
    pred: Prediction = m.predict(data, ends)
    cpu = data.features[ends, :, data.feature_names.index("cpu_utilisation")]
    np.testing.assert_allclose(pred.fault_probability, cpu)
    assert (pred.fault_type == 1).all()  # it can only say "cpu"


def test_promql_types_by_the_rule_that_fired(data: Dataset) -> None:
    m = predictor_class("promql")()
    m.fit(data, temporal_split(500, 3), TrainOptions(window=3), progress=False)
    f = data.features.copy()
    mem = data.feature_names.index("memory_used_fraction")
    f[100:103, 2, mem] = [0.80, 0.90, 0.99]  # memory rising fast on host 2
    pred = m.predict_arrays(f, data.migrations, np.array([102]))
    assert pred.fault_probability[0, 2] > 1.0  # projected past full
    assert pred.fault_type[0, 2] == 2  # memory


def test_gbt_tree_walk_matches_scikit_learn(data: Dataset) -> None:
    from sklearn.ensemble import HistGradientBoostingClassifier

    from ftmoe.predictor.baselines.common import tabular
    from ftmoe.predictor.baselines.gbt import GradientBoostedTrees

    ends = np.arange(5, 300)
    X = tabular(data.features, ends, 4)
    y = data.labels[ends + 1].reshape(-1)
    clf = HistGradientBoostingClassifier(max_iter=20, random_state=0).fit(X, y)
    g = GradientBoostedTrees()
    g.class_names = ["none", "cpu", "memory", "disk"]
    g._export(clf, [int(c) for c in clf.classes_], 4)
    ours = g._raw(X)[:, [int(c) for c in clf.classes_]]
    np.testing.assert_allclose(ours, clf._raw_predict(X), rtol=1e-6, atol=1e-6)


def test_markov_detector_learns_which_states_lead_to_faults(data: Dataset) -> None:
    from ftmoe.predictor.baselines.markov import MarkovDetector

    options = TrainOptions(window=4)
    splits = temporal_split(data.shape[0], options.window)
    model = MarkovDetector()
    model.fit(data, splits, options, progress=False)
    s = model.states(data.features)
    assert s.min() >= 0 and s.max() < model.n_states
    np.testing.assert_allclose(model.transition.sum(axis=1), 1.0, rtol=1e-5)
    # States seen right before faults score higher than the rest, on held-out windows.
    pred = model.predict(data, splits.test)
    faulty = data.labels[splits.test + 1] > 0
    assert faulty.any() and pred.fault_probability[faulty].mean() > 1.5 * pred.fault_probability[~faulty].mean()
    # An improbable transition is flagged at least at the fault rate that followed such transitions.
    assert 0 < model.surprise_risk < 1
