"""The training protocol: horizon targets, blocked splits, calibration, and nothing
fitted on the windows that are scored."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from ftmoe.cli import main
from ftmoe.contract.dataset import Dataset, labelled_segments
from ftmoe.contract.dataset import load as load_dataset
from ftmoe.predictor import calibration
from ftmoe.predictor.base import TrainOptions, fit_model
from ftmoe.predictor.data import TEST, TRAIN, VAL, blocked_split, rolling_origin, targets, window_ends
from ftmoe.predictor.registry import load, predictor_class


def test_horizon_targets_ask_about_the_next_h_intervals() -> None:
    labels = np.zeros((10, 2), dtype=np.int8)
    labels[5, 0] = 2
    labels[6:8, 1] = 1
    y = targets(labels, lead=1, horizon=3)
    assert [int(v) for v in y[:, 0]] == [0, 0, 2, 2, 2, 0, 0, 0, 0, 0]
    assert [int(v) for v in y[:, 1]] == [0, 0, 0, 1, 1, 1, 1, 0, 0, 0]
    np.testing.assert_array_equal(targets(labels, 1, 1)[:-1], labels[1:])  # horizon 1 = the next interval


def _synthetic(T: int = 3000, H: int = 6, seed: int = 0, faults: int = 60) -> Dataset:
    """A detectable fault: feature 0 ramps up for 4 intervals before a 3-interval fault."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(T, H, 3)).astype(np.float32)
    labels = np.zeros((T, H), dtype=np.int8)
    for onset in np.sort(rng.choice(np.arange(20, T - 10), faults, replace=False)):
        h = int(rng.integers(H))
        x[onset - 4 : onset + 3, h, 0] += np.linspace(1, 4, 7)
        labels[onset : onset + 3, h] = 1
    return Dataset(x, ["a", "b", "c"], labels, ["none", "fault"], np.zeros((0, 3), dtype=np.int32), [f"h{i}" for i in range(H)], 60.0, {})


def test_no_window_crosses_a_split_edge_a_break_or_an_unlabelled_target() -> None:
    ds = _synthetic()
    labelled = np.ones(ds.shape[0], dtype=bool)
    labelled[:300] = False
    breaks = [1500]
    W, lead, h = 6, 1, 3
    s = blocked_split(ds.labels, W, lead, h, labelled=labelled, breaks=breaks)
    for which, ends in ((TRAIN, s.train), (VAL, s.val), (TEST, s.test)):
        assert len(ends)
        for t in ends:
            span = np.arange(t - W + 1, t + lead + h)
            assert (s.assignment[span] == which).all()
            assert not (span[0] < 1500 <= span[-1])
            assert labelled[t + lead : t + lead + h].all()
    # the validation blocks are spread over the training period, not only its tail
    val_intervals = np.flatnonzero(s.assignment == VAL)
    test_start = int(np.flatnonzero(s.assignment == TEST)[0])
    assert val_intervals.min() < test_start / 2
    assert s.val_positives >= 30


def test_validation_widens_until_it_holds_30_positives_and_errs_when_it_cannot() -> None:
    ds = _synthetic(T=3000, faults=30)
    s = blocked_split(ds.labels, 6, 1, 1, val_share=0.05)
    assert s.val_positives >= 30 and s.val_share > 0.05 and s.notes
    few = _synthetic(T=3000, faults=6)
    with pytest.raises(ValueError, match="at least 30"):
        blocked_split(few.labels, 6, 1, 1)


def test_rolling_origin_folds_test_successive_disjoint_blocks_on_the_past_only() -> None:
    ds = _synthetic(T=4000, faults=100)
    ds.labelled = np.ones(ds.shape[0], dtype=bool)
    ds.labelled[:400] = False  # an unlabelled history, as ASD's training days
    blocks = []
    for fold in range(3):
        part = rolling_origin(ds, fold)
        s = blocked_split(part.labels, 6, 1, 3, labelled=part.labelled)
        test = np.flatnonzero(s.assignment == TEST)
        blocks.append((int(test[0]), int(test[-1]) + 1, part.shape[0]))
        # the fold is the file's own beginning: nothing after its origin is in it
        np.testing.assert_array_equal(part.features, ds.features[: part.shape[0]])
        assert (s.assignment[: test[0]] != TEST).all()
    assert blocks[0][2] == ds.shape[0]
    for (start, _, _), (_, stop, end) in zip(blocks, blocks[1:]):
        assert stop == end == start  # fold k's test block ends where fold k-1's begins
    assert blocks[2][0] > 400
    with pytest.raises(ValueError, match="fewer folds"):
        rolling_origin(ds, 40)


def test_window_ends_keep_the_old_temporal_split() -> None:
    assignment = np.array([TRAIN] * 50 + [VAL] * 20 + [TEST] * 30, dtype=np.int8)
    np.testing.assert_array_equal(window_ends(assignment, VAL, 6, 1), np.arange(55, 69))


def test_platt_calibration_makes_scores_probabilities() -> None:
    rng = np.random.default_rng(1)
    y = rng.random(20000) < 0.05
    raw = np.clip(0.5 + 0.3 * y + rng.normal(0, 0.15, y.size), 0, 1)  # a good ranker, badly calibrated
    assert calibration.ece(raw, y) > 0.2
    cal = calibration.fit(raw[:10000], y[:10000], "platt")
    assert calibration.ece(cal(raw[10000:]), y[10000:]) < 0.02
    iso = calibration.fit(raw[:10000], y[:10000], "isotonic")
    assert calibration.ece(iso(raw[10000:]), y[10000:]) < 0.03
    assert calibration.Calibrator.from_dict(cal.to_dict())(np.array([0.7])) == pytest.approx(cal(np.array([0.7])))


@pytest.mark.parametrize("kind", ["gbt", "mlp", "ftmoe", "dftm"])
def test_threshold_and_calibration_never_see_the_test_windows(kind: str) -> None:
    ds = _synthetic(T=1500, faults=60)
    s = blocked_split(ds.labels, 6, 1, 3)
    opts = TrainOptions(
        window=6, horizon=3, epochs=2, seed=0, overrides={"hidden": 8}, feature_map={"cpu_utilisation": "a"} if kind == "dftm" else {}
    )
    a = predictor_class(kind)()
    fit_model(a, ds, s, opts, progress=False)
    scrambled = Dataset(ds.features, ds.feature_names, ds.labels.copy(), ds.class_names, ds.migrations, ds.host_names, 60.0, {})
    test_rows = np.flatnonzero(s.assignment == TEST)
    scrambled.labels[test_rows] = np.random.default_rng(5).integers(0, 2, (len(test_rows), ds.shape[1]))
    b = predictor_class(kind)()
    fit_model(b, scrambled, s, opts, progress=False)
    assert a.threshold == b.threshold
    assert a.calibrator.to_dict() == b.calibrator.to_dict()
    assert a.info["validation"]["positives"] >= 30
    # the score variants are chosen by is the validation windows' own, whatever the test labels
    assert 0.0 < a.info["validation"]["pr_auc"] == b.info["validation"]["pr_auc"] <= 1.0


def test_labelled_segments_are_fault_records() -> None:
    labels = np.zeros((8, 2), dtype=np.int8)
    labels[2:4, 0] = 1
    labels[5:, 1] = 2
    recs = labelled_segments(labels)
    assert recs == [
        {"host": 0, "fault_type": 1, "cause": "labelled", "precursor_start": None, "onset": 2, "end": 4},
        {"host": 1, "fault_type": 2, "cause": "labelled", "precursor_start": None, "onset": 5, "end": None},
    ]


def test_minimal_file_trains_and_evaluates_with_typing_na(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ds = _synthetic(T=1500, faults=60)
    path = tmp_path / "minimal.npz"
    # only the required fields, as docs/dataset-format.md shows
    np.savez_compressed(
        path,
        features=ds.features,
        feature_names=np.array(ds.feature_names),
        labels=ds.labels,
        class_names=np.array(ds.class_names),
        interval_seconds=np.array(60.0),
    )
    assert load_dataset(path).host_names == [f"host-{i}" for i in range(6)]
    out = tmp_path / "m"
    assert main(["train", "--data", str(path), "--out", str(out), "--model-type", "gbt", "--quiet", "--threads", "1"]) == 0
    report = capsys.readouterr().out
    assert "typing      accuracy n/a" in report and "ECE" in report and "PR-AUC" in report
    model = load(out)
    assert model.horizon == 3 and model.calibrator.method == "platt" and 0 < model.threshold < 1
    plot = tmp_path / "rel.png"
    assert (
        main(
            [
                "evaluate",
                "--model",
                str(out),
                "--data",
                str(path),
                "--split",
                "test",
                "--plot",
                str(plot),
                "--json",
                str(tmp_path / "r.json"),
            ]
        )
        == 0
    )
    assert plot.stat().st_size > 1000
    import json

    r = json.loads((tmp_path / "r.json").read_text())
    assert r["type_accuracy"] is None and r["faults_scored"] > 0 and set(r["per_horizon"]) >= {"1", "3"}
    assert r["pr_auc"] > r["base_rate"]  # the ramp is learnable: better than an alarm on everything


def test_train_help_shows_defaults_and_every_model_type(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = capsys.readouterr().out
    for word in ("default: 30", "--horizon", "--val-share", "--test-share", "--threads", "--min-epochs", "gbt", "pregan_plus", "promql"):
        assert word in text, word


def test_rule_baselines_run_on_other_feature_names() -> None:
    ds = _synthetic(T=1500, faults=60)
    s = blocked_split(ds.labels, 6, 1, 3)
    m = predictor_class("promql")()
    with pytest.raises(ValueError, match="--features cpu_utilisation=COLUMN"):
        fit_model(m, ds, s, TrainOptions(horizon=3), progress=False)
    opts = TrainOptions(horizon=3, feature_map={"cpu_utilisation": "auto", "memory_used_fraction": "b/2", "disk_used_fraction": "none"})
    fit_model(m, ds, s, opts, progress=False)
    assert m.info["roles"]["cpu_utilisation"]["column"] == "a"  # the column that ranks validation best
    assert m.info["roles"]["disk_used_fraction"] is None


def test_quiet_training_prints_one_clean_line_per_epoch(tmp_path: Path) -> None:
    import subprocess
    import sys

    ds = _synthetic(T=1500, faults=60)
    data = tmp_path / "d.npz"
    ds.save(data)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "ftmoe",
            "train",
            "--data",
            str(data),
            "--out",
            str(tmp_path / "m"),
            "--epochs",
            "2",
            "--min-epochs",
            "1",
            "--quiet",
            "--set",
            "hidden=8",
            "--threads",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env={"PATH": "/usr/bin:/bin", "PYTHONWARNINGS": "default"},
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.splitlines()
    assert [line.split()[1] for line in lines if line.startswith("epoch ")] == ["1/2", "2/2"]
    assert "Warning" not in proc.stderr and "\r" not in proc.stderr


def test_old_model_configs_read_the_new_fields_as_off_and_new_knobs_train() -> None:
    import torch

    from ftmoe.predictor.config import LEGACY, ModelConfig
    from ftmoe.predictor.model import FTMoE

    old = ModelConfig.from_dict({"features": 4, "classes": 1})
    assert all(getattr(old, k) == v for k, v in LEGACY.items())
    assert ModelConfig(features=4, classes=1).window_stats  # new models see the window's statistics
    cfg = ModelConfig(features=4, classes=1, window=6, hidden=8, nowcast=True, input_clip=5.0, input_noise=0.1)
    model = FTMoE(cfg)
    out = model(torch.randn(3, 6, 5, 4) * 100, torch.zeros((2, 0), dtype=torch.long))
    assert out.fault_probability.shape == (3, 5) and torch.isfinite(out.fault_probability).all()
    assert model.last_residual is not None and model.last_residual.shape == (15, 4)
    ds = _synthetic(T=1500, faults=60)
    s = blocked_split(ds.labels, 6, 1, 3)
    m = predictor_class("ftmoe")()
    fit_model(
        m,
        ds,
        s,
        TrainOptions(horizon=3, epochs=1, min_epochs=1, pos_weight="none", overrides={"hidden": 8, "nowcast": True}),
        progress=False,
    )
    assert "nowcast" in m.info["architecture"] and m.info["architecture"]["nowcast"]


def _pretraining_run(labels_seed: int) -> tuple[dict[str, Any], int, float, float]:
    """Pre-train FT-MoE's nowcaster on a file with 1,000 unlabelled intervals first; returns
    its weights, the windows it saw, and the nowcast MSE on them before and after."""
    from ftmoe.predictor.baselines.common import windows
    from ftmoe.predictor.config import ModelConfig
    from ftmoe.predictor.data import Normaliser, fitting_end
    from ftmoe.predictor.ftmoe_predictor import FTMoEPredictor

    ds = _synthetic(T=2000)
    ds.labelled = np.ones(ds.shape[0], dtype=bool)
    ds.labelled[:1000] = False
    ds.labels[:1000] = np.random.default_rng(labels_seed).integers(0, 2, size=(1000, ds.shape[1]))  # never to be read
    splits = blocked_split(ds.labels, 6, 1, 3, labelled=ds.labelled)
    options = TrainOptions(window=6, horizon=3, pretrain_epochs=2, overrides={"nowcast": True})
    pred = FTMoEPredictor()
    torch.manual_seed(0)
    model = pred.build(ModelConfig(features=3, classes=1, window=6, nowcast=True))
    x = Normaliser.fit(ds.features[: fitting_end(splits, ds.shape[0])])(ds.features)
    ends = window_ends(splits.assignment, TRAIN, 6, 0, 1, ds.breaks, None)
    per_host = torch.from_numpy(windows(x, ends, 6)).permute(0, 2, 1, 3).reshape(-1, 6, 3)  # [N*H, W, F]
    assert model.nowcast is not None
    with torch.no_grad():
        before = float(model.nowcast(per_host).pow(2).mean())
    pred.pretrain_nowcast(x, ds, splits, options, log=False)
    with torch.no_grad():
        after = float(model.nowcast(per_host).pow(2).mean())
    return {k: v.clone() for k, v in model.nowcast.state_dict().items()}, len(ends), before, after


def test_nowcast_pretraining_reads_the_unlabelled_history_and_never_a_label() -> None:
    weights, seen, before, after = _pretraining_run(labels_seed=1)
    other, _, _, _ = _pretraining_run(labels_seed=2)
    s = blocked_split(_synthetic(T=2000).labels, 6, 1, 3, labelled=np.r_[np.zeros(1000, bool), np.ones(1000, bool)])
    assert seen > len(s.train) + 900, "the unlabelled history's windows are pre-trained on"
    assert after < before, "pre-training lowers the nowcast error"
    for k in weights:  # other labels in the unlabelled part, the same nowcaster
        assert torch.equal(weights[k], other[k])


def test_the_kept_weights_are_the_ones_validation_scored_with_a_moving_average() -> None:
    from ftmoe.predictor.base import average_precision
    from ftmoe.predictor.ftmoe_predictor import FTMoEPredictor

    ds = _synthetic(T=1500)
    splits = blocked_split(ds.labels, 6, 1, 3)
    pred = FTMoEPredictor()
    pred.horizon = 3
    history = pred.fit(ds, splits, TrainOptions(window=6, horizon=3, epochs=3, min_epochs=3, ema=0.9), progress=False)
    prob = pred.raw_predict(ds.features, ds.migrations, splits.val).fault_probability
    kept = average_precision(prob, pred.targets(ds, splits.val) > 0)
    assert kept == pytest.approx(history["best_val_pr_auc"], abs=1e-6)


def test_the_ensemble_bench_chooses_thresholds_on_validation_and_averages_seeds() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
    from realdata_ensemble import compare

    rng = np.random.default_rng(0)
    val_pos, test_pos = rng.random((400, 4)) < 0.1, rng.random((400, 4)) < 0.1

    def seed_run(noise: float) -> dict[str, np.ndarray]:
        # each seed: the truth plus its own noise, so averaging seeds ranks better
        return {
            "val": np.clip(val_pos * 0.5 + rng.normal(0.25, noise, val_pos.shape), 0, 1),
            "val_pos": val_pos,
            "test": np.clip(test_pos * 0.5 + rng.normal(0.25, noise, test_pos.shape), 0, 1),
            "test_pos": test_pos,
        }

    runs = {"ftmoe": [seed_run(0.4) for _ in range(5)], "gbt": [seed_run(0.2) for _ in range(5)]}
    out = compare(runs)
    assert out["ftmoe ensemble"]["pr_auc"]["mean"] > out["ftmoe single"]["pr_auc"]["mean"] + 0.05
    assert set(out) == {"ftmoe single", "ftmoe ensemble", "gbt single", "gbt ensemble", "blend"}
    assert len(out["ftmoe ensemble"]["thresholds"]) == 1 and out["ftmoe ensemble"]["pr_auc"]["std"] == 0
    # --members 2 over 5 seeds: two disjoint ensembles (seeds 0-1, 2-3), each scored alone
    grouped = compare(runs, members=2)
    assert len(grouped["ftmoe ensemble"]["thresholds"]) == 2 and len(grouped["blend"]["thresholds"]) == 2
    assert grouped["ftmoe ensemble"]["pr_auc"]["mean"] > out["ftmoe single"]["pr_auc"]["mean"]
    # the test windows never move a threshold: scrambling them leaves every threshold as it was
    for r in runs["ftmoe"] + runs["gbt"]:
        r["test"] = rng.permutation(r["test"].ravel()).reshape(r["test"].shape)
    again, again_grouped = compare(runs), compare(runs, members=2)
    for k in ("ftmoe ensemble", "gbt ensemble", "blend"):
        assert again[k]["thresholds"] == out[k]["thresholds"]
        assert again_grouped[k]["thresholds"] == grouped[k]["thresholds"]


def test_a_bench_run_of_one_normalisation_keeps_the_other_rows_in_place() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
    from realdata import aggregate, merge_rows

    table = [{"dataset": "asd", "model": m} for m in ("alarm on everything", "ftmoe", "gbt")] + [{"dataset": "ob", "model": "gbt"}]
    new = [
        {"dataset": "asd", "model": "alarm on everything", "fresh": True},
        {"dataset": "asd", "model": "ftmoe [auto]"},
        {"dataset": "sim", "model": "ftmoe [auto]"},
    ]
    out = merge_rows(table, new)
    assert [(r["dataset"], r["model"]) for r in out] == [
        ("asd", "alarm on everything"),
        ("asd", "ftmoe"),
        ("asd", "gbt"),
        ("asd", "ftmoe [auto]"),
        ("ob", "gbt"),
        ("sim", "ftmoe [auto]"),
    ]
    assert out[0].get("fresh")  # replaced where it stood, not duplicated
    # what validation chose, counted over the seeds
    runs = [{"f1": 0.5, "normalisation": m} for m in ("zscore", "quantile", "quantile")]
    assert aggregate(runs)["normalisation_chosen"] == {"quantile": 2, "zscore": 1}
