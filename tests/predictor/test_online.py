"""OnlineTuner: each rule fires when its condition holds, and only the MoE changes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from ftmoe.contract.dataset import Dataset
from ftmoe.predictor.base import TrainOptions
from ftmoe.predictor.data import temporal_split
from ftmoe.predictor.ftmoe_predictor import FTMoEPredictor
from ftmoe.predictor.online import OnlineTuner
from ftmoe.predictor.registry import load
from ftmoe.simulator.config import SimConfig
from ftmoe.simulator.generate import simulate
from ftmoe.simulator.traces import load_pool


@pytest.fixture(scope="module")
def data() -> Dataset:
    return simulate(SimConfig(hosts=8, intervals=300, seed=2), load_pool())


@pytest.fixture()
def predictor(data: Dataset) -> FTMoEPredictor:
    p = FTMoEPredictor()
    p.fit(
        data, temporal_split(300, 4), TrainOptions(window=4, epochs=1, overrides={"hidden": 16, "experts": 4, "k_max": 2}), progress=False
    )
    return p


def test_unused_expert_is_removed(predictor: FTMoEPredictor, data: Dataset) -> None:
    assert predictor.model is not None
    with torch.no_grad():
        predictor.model.moe.gate.thresholds[2] = 50.0  # sigmoid ~ 1: expert 2 can never be activated
    report = OnlineTuner(predictor, record_epochs=1).tune(data.features, data.labels, data.migrations, np.arange(10, 200), epochs=1)
    assert 2 in report.removed
    assert report.experts_after == 4 - len(report.removed) + report.added


def test_expert_added_when_inputs_activate_none(predictor: FTMoEPredictor, data: Dataset) -> None:
    assert predictor.model is not None
    with torch.no_grad():
        predictor.model.moe.gate.thresholds.fill_(50.0)  # nothing is activatable
    tuner = OnlineTuner(predictor, record_epochs=1, min_experts=4)  # keep all: isolate rule 2
    report = tuner.tune(data.features, data.labels, data.migrations, np.arange(10, 200), epochs=1)
    assert report.added == 1 and report.experts_after == 5
    new_threshold = torch.sigmoid(predictor.model.moe.gate.thresholds[-1])
    assert new_threshold < 1e-3  # "threshold initialised to 0"
    # the inputs that activated nothing now activate the new expert
    x = torch.from_numpy(predictor.normaliser(data.features[:4])).unsqueeze(0)  # type: ignore[misc]
    predictor.model(x, torch.zeros((2, 0), dtype=torch.long))
    assert predictor.model.moe.last.activatable[:, -1].all()


def test_counters_reset_after_a_change(predictor: FTMoEPredictor, data: Dataset) -> None:
    tuner = OnlineTuner(predictor, record_epochs=1)
    tuner.tune(data.features, data.labels, data.migrations, np.arange(10, 100), epochs=1)
    assert tuner.activations.sum() == 0 and tuner.orphans == [] and len(tuner.activations) == predictor.model.moe.n_experts  # type: ignore[union-attr]


def test_only_the_moe_changes(predictor: FTMoEPredictor, data: Dataset) -> None:
    assert predictor.model is not None
    before = {k: v.clone() for k, v in predictor.model.state_dict().items() if not k.startswith("moe.")}
    OnlineTuner(predictor, record_epochs=5).tune(data.features, data.labels, data.migrations, np.arange(10, 150), epochs=1)
    after = predictor.model.state_dict()
    frozen_changed = [k for k, v in before.items() if not torch.equal(v, after[k]) and "prototypes" not in k]
    assert frozen_changed == []
    assert all(p.requires_grad for p in predictor.model.parameters())  # unfrozen afterwards


def test_tuned_model_round_trips_with_its_expert_count(predictor: FTMoEPredictor, data: Dataset, tmp_path: Path) -> None:
    assert predictor.model is not None
    with torch.no_grad():
        predictor.model.moe.gate.thresholds.fill_(50.0)
    OnlineTuner(predictor, record_epochs=1, min_experts=4).tune(data.features, data.labels, data.migrations, np.arange(10, 100), epochs=1)
    predictor.save(tmp_path / "m")
    again = load(tmp_path / "m")
    assert again.model.moe.n_experts == 5  # type: ignore[attr-defined]
