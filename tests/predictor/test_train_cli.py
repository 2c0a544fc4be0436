"""`ftmoe train` / `ftmoe evaluate` end to end on a tiny simulated dataset, and model files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from ftmoe.cli import main
from ftmoe.predictor.data import temporal_split
from ftmoe.predictor.errors import ModelFileError
from ftmoe.predictor.registry import load
from ftmoe.simulator.config import SimConfig
from ftmoe.simulator.generate import simulate
from ftmoe.simulator.traces import load_pool


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("data") / "tiny.npz"
    simulate(SimConfig(hosts=8, intervals=400, seed=0), load_pool()).save(path)
    return path


@pytest.fixture(scope="module")
def trained(tiny: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("model") / "m"
    assert main(["train", "--data", str(tiny), "--out", str(out), "--epochs", "2", "--quiet", "--set", "hidden=16"]) == 0
    return out


def test_train_writes_a_complete_model_folder(trained: Path) -> None:
    assert (trained / "model.safetensors").is_file()
    config = json.loads((trained / "config.json").read_text())
    assert config["kind"] == "ftmoe" and config["window"] == 6 and config["lead"] == 1
    assert config["class_names"] == ["none", "cpu", "memory", "disk"]
    assert len(config["feature_names"]) == 16
    norm = config["state"]["normalisation"]
    assert len(norm["mean"]) == 16 and len(norm["std"]) == 16
    assert config["state"]["architecture"]["hidden"] == 16
    metrics = json.loads((trained / "metrics.json").read_text())
    assert 0 <= metrics["test"]["f1"] <= 1 and len(metrics["history"]) >= 1
    assert "detection" in (trained / "report.txt").read_text()


def test_loaded_model_predicts_like_the_trained_one(trained: Path, tiny: Path) -> None:
    from ftmoe.contract.dataset import load as load_ds

    ds = load_ds(tiny)
    m1, m2 = load(trained), load(trained)
    ends = temporal_split(ds.shape[0], m1.window).test
    np.testing.assert_allclose(m1.predict(ds, ends).fault_probability, m2.predict(ds, ends).fault_probability)


def test_evaluate_all_and_test_split(trained: Path, tiny: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", "--model", str(trained), "--data", str(tiny), "--json", str(tmp_path / "all.json")]) == 0
    assert main(["evaluate", "--model", str(trained), "--data", str(tiny), "--split", "test", "--json", str(tmp_path / "t.json")]) == 0
    all_, test = json.loads((tmp_path / "all.json").read_text()), json.loads((tmp_path / "t.json").read_text())
    # every window with its 6 intervals of history and its 3-interval horizon (the CLI default) inside the data
    assert all_["windows"] == 400 - 6 - 2 and test["windows"] < all_["windows"]
    # the simulator's oracle bounds next-interval prediction: reported for horizon-1 models only
    assert "oracle" not in all_ and "hr@150" in all_ and all_["horizon"] == 3
    assert "F1" in capsys.readouterr().out


def test_normalisation_comes_from_the_intervals_before_the_test_split(trained: Path, tiny: Path) -> None:
    from ftmoe.contract.dataset import load as load_ds
    from ftmoe.predictor.cli import protocol_splits
    from ftmoe.predictor.data import TEST, Normaliser

    ds = load_ds(tiny)
    split = protocol_splits(ds, 6, 1, 3, 0.2, 0.2)  # the CLI's defaults
    test_start = int(np.flatnonzero(split.assignment == TEST)[0])
    expected = Normaliser.fit(ds.features[:test_start])  # features only: no label is read
    saved = json.loads((trained / "config.json").read_text())["state"]["normalisation"]
    np.testing.assert_allclose(saved["mean"], expected.mean, rtol=1e-6)


def test_corrupt_or_missing_model_files_are_named(trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ModelFileError, match="config.json: no such file"):
        load(tmp_path)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text((trained / "config.json").read_text())
    (broken / "model.safetensors").write_bytes(b"not a tensor file")
    with pytest.raises(ModelFileError, match="cannot load the ftmoe model"):
        load(broken)
    (broken / "config.json").write_text("{")
    assert main(["evaluate", "--model", str(broken), "--data", "x.npz"]) == 1
    assert "not valid JSON" in capsys.readouterr().err


def test_bad_architecture_override_names_the_key(tiny: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--data", str(tiny), "--out", str(tmp_path / "x"), "--set", "nonsense=1"]) == 1
    assert "KEY one of" in capsys.readouterr().err


def test_unknown_model_type(tiny: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--data", str(tiny), "--out", str(tmp_path / "x"), "--model-type", "magic"]) == 1
    assert "unknown model type 'magic'" in capsys.readouterr().err


def test_quantile_inputs_are_saved_with_the_model_and_read_back(tiny: Path, tmp_path: Path) -> None:
    from ftmoe.contract.dataset import load as load_ds

    out = tmp_path / "q"
    args = ["train", "--data", str(tiny), "--out", str(out), "--epochs", "1", "--quiet", "--set", "hidden=16"]
    assert main([*args, "--normalisation", "quantile"]) == 0
    norm = json.loads((out / "config.json").read_text())["state"]["normalisation"]
    assert len(norm["knots"]) == 16 and norm["method"] == "quantile"
    ds = load_ds(tiny)
    model = load(out)
    assert model.normaliser.method == "quantile"  # type: ignore[attr-defined]  # an FT-MoE model keeps one
    ends = temporal_split(ds.shape[0], model.window).test
    np.testing.assert_allclose(model.predict(ds, ends).fault_probability, load(out).predict(ds, ends).fault_probability)


@pytest.mark.parametrize("kind", ["mlp", "gbt"])
def test_auto_normalisation_keeps_the_one_validation_scores_higher(tiny: Path, kind: str) -> None:
    from ftmoe.contract.dataset import load as load_ds
    from ftmoe.predictor.base import TrainOptions, fit_model
    from ftmoe.predictor.cli import protocol_splits
    from ftmoe.predictor.registry import predictor_class

    ds = load_ds(tiny)
    options = TrainOptions(horizon=3, normalisation="auto", max_train_windows=2000)
    splits = protocol_splits(ds, options.window, options.lead, options.horizon, 0.2, 0.2)
    model = predictor_class(kind)()
    fit_model(model, ds, splits, options, progress=False)
    if not model.normalises:  # trees see raw values: trained once, nothing to choose
        assert "normalisation" not in model.info
        return
    chosen = model.info["normalisation"]
    scores = chosen["validation_pr_auc"]
    assert set(scores) == {"zscore", "quantile"}
    assert chosen["chosen"] == max(scores, key=lambda m: scores[m])
    assert model.info["validation"]["pr_auc"] == scores[chosen["chosen"]]
    assert model.normaliser.method == chosen["chosen"]  # type: ignore[attr-defined]  # an mlp keeps one


def test_auto_normalisation_says_what_it_trains_and_keeps(tiny: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "auto"
    args = ["train", "--data", str(tiny), "--out", str(out), "--epochs", "1", "--quiet", "--model-type", "mlp"]
    assert main([*args, "--normalisation", "auto"]) == 0
    err = capsys.readouterr().err
    assert "training with zscore inputs (1 of 2)" in err and "training with quantile inputs (2 of 2)" in err
    info = json.loads((out / "config.json").read_text())["info"]["normalisation"]
    assert f"kept {info['chosen']} (validation PR-AUC zscore " in err


@pytest.fixture(scope="module")
def ensemble(tiny: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ensemble") / "e"
    args = ["train", "--data", str(tiny), "--out", str(out), "--epochs", "1", "--quiet", "--set", "hidden=16", "--members", "2"]
    assert main([*args, "--max-train-windows", "600"]) == 0
    return out


def test_an_ensemble_averages_its_members_before_calibration(ensemble: Path, tiny: Path) -> None:
    from ftmoe.contract.dataset import load as load_ds
    from ftmoe.predictor.ftmoe_predictor import FTMoEPredictor

    ds = load_ds(tiny)
    model = load(ensemble)
    assert isinstance(model, FTMoEPredictor) and len(model.members) == 2
    first, second = (dict(net.named_parameters())["classify.prototypes"] for net in model.members)
    assert not torch.equal(first, second)  # seeds --seed and --seed + 1: two different networks
    ends = temporal_split(ds.shape[0], model.window).test
    features, migrations = model.inputs(ds)
    raw = model.raw_predict(features, migrations, ends).fault_probability
    alone = []
    for net in model.members:
        model.model, model.others = net, []
        alone.append(model.raw_predict(features, migrations, ends).fault_probability)
    np.testing.assert_allclose(raw, np.mean(alone, axis=0), rtol=1e-5, atol=1e-7)
    config = json.loads((ensemble / "config.json").read_text())
    assert len(config["state"]["members"]) == 1 and config["info"]["members"] == 2 and len(config["info"]["epochs_run"]) == 2


def test_an_ensemble_round_trips_through_its_model_file(ensemble: Path, tiny: Path) -> None:
    from ftmoe.contract.dataset import load as load_ds

    ds = load_ds(tiny)
    m1, m2 = load(ensemble), load(ensemble)
    ends = temporal_split(ds.shape[0], m1.window).test
    np.testing.assert_allclose(m1.predict(ds, ends).fault_probability, m2.predict(ds, ends).fault_probability)
    from safetensors.numpy import load_file

    names = load_file(str(ensemble / "model.safetensors"))
    assert "classify.prototypes" in names and "member1.classify.prototypes" in names


def test_online_tuning_refuses_an_ensemble(ensemble: Path) -> None:
    from ftmoe.predictor.online import OnlineTuner

    with pytest.raises(ValueError, match="ensemble of 2"):
        OnlineTuner(load(ensemble))  # type: ignore[arg-type]  # an FT-MoE model


def test_members_is_checked(tiny: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["train", "--data", str(tiny), "--out", str(tmp_path / "x"), "--epochs", "1", "--quiet"]
    assert main([*args, "--members", "0"]) == 1
    assert "--members 0: the number of networks in the ensemble, at least 1" in capsys.readouterr().err
    assert main([*args, "--members", "2", "--model-type", "gbt"]) == 1
    assert "only the FT-MoE family (ftmoe, pregan, pregan_plus) trains ensembles, not gbt" in capsys.readouterr().err
