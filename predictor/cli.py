"""``ftmoe train`` and ``ftmoe evaluate``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from ftmoe.contract.dataset import DatasetError
from ftmoe.errors import reports
from ftmoe.predictor.config import DEFAULT_NORMALISATION, NORMALISATIONS
from ftmoe.predictor.errors import ModelFileError

MODEL_TYPES_HELP = (
    "ftmoe (FT-MoE), mlp (the second seed's sigmoid predictor), gbt (gradient-boosted trees on "
    "windowed features), cmodlb, pregan, pregan_plus, markov (the second seed's state-transition "
    "detector), dftm, pcft, eclb, promql (rules; see --features)"
)


def default_threads() -> int:
    """Torch's default (one thread per core, plus inter-op threads) oversubscribes a busy
    machine; a batch then takes twenty times as long. Use the cores this process may run
    on, at most 4 (more does not help models this size)."""
    import os

    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 1
    return max(1, min(4, cores))


def set_threads(n: int) -> None:
    import torch

    if n < 1:
        raise ValueError(f"--threads {n}: give at least 1")
    torch.set_num_threads(n)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass  # already set in this process (torch allows it once)


def add_protocol_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--horizon",
        type=int,
        default=3,
        help="predict whether a fault starts or is under way within the next HORIZON intervals (1 = the next one)",
    )
    p.add_argument("--lead", type=int, default=1, help="the horizon starts this many intervals after the window's last one")
    p.add_argument(
        "--test-share",
        type=float,
        default=0.2,
        help="latest share of the labelled data (by time and by faults) held out as the test split; 0 = train on the whole file",
    )
    p.add_argument(
        "--val-share",
        type=float,
        default=0.2,
        help="share of the training period in validation blocks spread over it (threshold, calibration, early "
        "stopping); widened automatically until it holds 30 positives",
    )


def register(commands: Any) -> None:
    fmt = argparse.ArgumentDefaultsHelpFormatter
    train = commands.add_parser(
        "train",
        help="train FT-MoE (or a baseline) on a v1 dataset",
        formatter_class=fmt,
        description="Train a model under the out-of-sample protocol: train windows, validation blocks "
        "(early stopping, calibration, threshold), a held-out test split it is scored on.",
    )
    train.add_argument("--data", type=Path, required=True, help="dataset .npz (format v1, docs/dataset-format.md)")
    train.add_argument("--out", type=Path, required=True, help="model folder to write")
    train.add_argument("--model-type", default="ftmoe", metavar="TYPE", help=MODEL_TYPES_HELP)
    train.add_argument("--epochs", type=int, default=30, help="most training epochs (neural models)")
    train.add_argument("--min-epochs", type=int, default=5, help="no early stop before this many epochs")
    train.add_argument("--patience", type=int, default=6, help="stop after this many epochs without a validation PR-AUC gain")
    train.add_argument("--window", type=int, default=6, help="past intervals each prediction sees")
    add_protocol_arguments(train)
    train.add_argument("--batch-size", type=int, default=32, help="windows per training batch")
    train.add_argument("--lr", type=float, default=1e-3, help="AdamW learning rate (x0.1 every 10 epochs)")
    train.add_argument("--seed", type=int, default=0, help="random seed (weights, batches, subsampling)")
    train.add_argument(
        "--calibration",
        choices=["platt", "isotonic", "none"],
        default="platt",
        help="how raw scores become probabilities, fitted on the validation blocks",
    )
    train.add_argument(
        "--normalisation",
        choices=[*NORMALISATIONS, "auto"],
        default=DEFAULT_NORMALISATION,
        help="the networks' inputs (ftmoe, pregan, mlp, cmodlb): zscore (log1p for heavy tails, then z-score), quantile "
        "(each feature through its training-period quantiles to a standard normal: only the order of values matters, "
        "as for a tree), both (side by side), ple (piecewise-linear encoding: 8 codes a feature, one per "
        "12.5 %% quantile bin, so a network weighs each stretch of the range on its own), or auto (train with zscore "
        "and with quantile, keep the higher validation PR-AUC; twice the training time)",
    )
    train.add_argument(
        "--host-baseline",
        action="store_true",
        help="learned models: read every feature as its deviation from the host's own median, in units of the host's "
        "interquartile range, both taken over the intervals before the test split; a host not seen there (a new node) "
        "is measured against all hosts' median. For fleets whose hosts differ in what normal is (docs/datasets.md)",
    )
    train.add_argument("--threads", type=int, default=default_threads(), help="torch threads (this machine's usable cores, at most 4)")
    train.add_argument("--max-train-windows", type=int, help="subsample training windows (quick runs)")
    train.add_argument(
        "--pretrain-epochs",
        type=int,
        default=0,
        help="FT-MoE with --set nowcast=true: epochs of self-supervised nowcaster training on every window of the "
        "training period, unlabelled history included, before the detector trains (0 = none)",
    )
    train.add_argument(
        "--ema",
        type=float,
        default=0.0,
        help="FT-MoE: decay of a moving average of the weights that validation scores and training keeps (0 = off, e.g. 0.99)",
    )
    train.add_argument(
        "--members",
        type=int,
        default=1,
        help="ftmoe, pregan, pregan_plus: a deep ensemble of this many networks, member k trained with seed --seed + k and "
        "early-stopped on its own, their fault probabilities averaged before calibration; steadier than one network "
        "from seed to seed, at this many times the training and inference time",
    )
    train.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="architecture override, e.g. --set hidden=64 --set gate=topk (repeatable)",
    )
    train.add_argument(
        "--features",
        action="append",
        default=[],
        metavar="ROLE=COLUMN[/SCALE]",
        help="rule baselines on other data: map a role (cpu_utilisation, memory_used_fraction, "
        "disk_used_fraction) to a column, 'none' or 'auto' (repeatable)",
    )
    train.add_argument("--quiet", action="store_true", help="no progress bars (one line per epoch is still printed)")
    train.set_defaults(func=cmd_train)

    ev = commands.add_parser("evaluate", help="score a model folder on a dataset", formatter_class=fmt)
    ev.add_argument("--model", type=Path, required=True, help="model folder written by ftmoe train")
    ev.add_argument("--data", type=Path, required=True, help="dataset .npz (format v1)")
    ev.add_argument(
        "--split",
        choices=["all", "test"],
        default="all",
        help="score every labelled window, or only the test split of the protocol the model was trained with",
    )
    ev.add_argument("--json", type=Path, help="write the metrics as JSON here")
    ev.add_argument("--plot", type=Path, help="write a reliability diagram (PNG) here")
    ev.add_argument("--threads", type=int, default=default_threads(), help="torch threads")
    ev.set_defaults(func=cmd_evaluate)


def parse_overrides(items: list[str]) -> dict[str, Any]:
    from dataclasses import fields

    from ftmoe.predictor.config import ModelConfig

    types = {f.name: f.type for f in fields(ModelConfig)}
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or key not in types or key in ("features", "classes", "feature_names", "class_names", "window"):
            allowed = sorted(k for k in types if k not in ("features", "classes", "feature_names", "class_names", "window"))
            raise ValueError(f"--set {item!r}: expected KEY=VALUE with KEY one of {', '.join(allowed)}")
        kind = str(types[key])
        if "bool" in kind:
            out[key] = raw.lower() in ("1", "true", "yes")
        elif "int" in kind:
            out[key] = int(raw)
        elif "float" in kind:
            out[key] = float(raw)
        else:
            out[key] = raw
    return out


def parse_feature_map(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        role, sep, spec = item.partition("=")
        if not sep or not role or not spec:
            raise ValueError(f"--features {item!r}: expected ROLE=COLUMN[/SCALE], ROLE=none or ROLE=auto")
        out[role] = spec
    return out


def protocol_splits(ds: Any, window: int, lead: int, horizon: int, test_share: float, val_share: float) -> Any:
    from ftmoe.predictor.data import blocked_split

    return blocked_split(
        ds.labels, window, lead, horizon, test_share=test_share, val_share=val_share, labelled=ds.labelled, breaks=ds.breaks
    )


@reports(DatasetError, ModelFileError, ValueError)
def cmd_train(args: argparse.Namespace) -> int:
    import time

    from ftmoe.contract.dataset import load
    from ftmoe.predictor.base import TrainOptions, fit_model
    from ftmoe.predictor.evaluate import evaluate, format_report
    from ftmoe.predictor.ftmoe_predictor import FTMoEPredictor
    from ftmoe.predictor.registry import predictor_class

    set_threads(args.threads)
    cls = predictor_class(args.model_type)
    if args.horizon < 1 or args.lead < 1 or args.window < 1:
        raise ValueError("--horizon, --lead and --window must be at least 1")
    overrides = parse_overrides(args.set)
    if args.pretrain_epochs < 0 or (args.pretrain_epochs and not overrides.get("nowcast")):
        raise ValueError("--pretrain-epochs trains FT-MoE's nowcaster: give it with --set nowcast=true, and not below 0")
    if not 0 <= args.ema < 1:
        raise ValueError(f"--ema {args.ema}: a decay in [0, 1), e.g. 0.99 (0 = off)")
    if args.members < 1:
        raise ValueError(f"--members {args.members}: the number of networks in the ensemble, at least 1")
    if args.members > 1 and not issubclass(cls, FTMoEPredictor):
        raise ValueError(
            f"--members {args.members}: only the FT-MoE family (ftmoe, pregan, pregan_plus) trains ensembles, not {args.model_type}"
        )
    if args.host_baseline and not cls.takes_host_baseline:
        raise ValueError(f"--host-baseline: {args.model_type} compares raw values with fixed cut-offs; use it with a learned model type")
    ds = load(args.data)
    options = TrainOptions(
        window=args.window,
        lead=args.lead,
        horizon=args.horizon,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        patience=args.patience,
        min_epochs=args.min_epochs,
        calibration=args.calibration,
        normalisation=args.normalisation,
        max_train_windows=args.max_train_windows,
        pretrain_epochs=args.pretrain_epochs,
        ema=args.ema,
        members=args.members,
        host_baseline=args.host_baseline,
        overrides=overrides,
        feature_map=parse_feature_map(args.features),
        log_epochs=True,
    )
    splits = protocol_splits(ds, options.window, options.lead, options.horizon, args.test_share, args.val_share)
    if len(splits.train) == 0 or len(splits.val) == 0 or (args.test_share > 0 and len(splits.test) == 0):
        raise ValueError(
            f"{args.data}: {ds.shape[0]} intervals are too few for window {options.window} and horizon "
            f"{options.horizon}: train, validation and test each need at least one window"
        )
    print(
        f"training {cls.kind} on {args.data}: {len(splits.train)} train / {len(splits.val)} validation "
        f"({splits.val_positives} positive host-windows) / {len(splits.test)} test windows, {ds.shape[1]} hosts, "
        f"{ds.shape[2]} features, horizon {options.horizon}, {args.threads} torch threads",
        file=sys.stderr,
    )
    model = cls()
    start = time.monotonic()
    history = fit_model(model, ds, splits, options, progress=not args.quiet)
    elapsed = time.monotonic() - start
    model.info.update(
        {
            "train_seconds": elapsed,
            "dataset": str(args.data),
            "seed": args.seed,
            "protocol": {"test_share": args.test_share, "val_share": splits.val_share, "horizon": options.horizon, "lead": options.lead},
        }
    )
    result = evaluate(model, ds, splits.test) if len(splits.test) else None
    if result is not None:
        model.info["test"] = {k: v for k, v in result.items() if not isinstance(v, (dict, list))}
    model.save(args.out)
    (args.out / "metrics.json").write_text(json.dumps({"train_seconds": elapsed, "history": history, "test": result}, indent=2))
    report = format_report(cls.kind, result) if result is not None else f"model {cls.kind}: trained on the whole file (--test-share 0)"
    report += f"\n  trained in {elapsed:.1f}s; model written to {args.out}"
    (args.out / "report.txt").write_text(report + "\n")
    print(report)
    return 0


@reports(DatasetError, ModelFileError, ValueError)
def cmd_evaluate(args: argparse.Namespace) -> int:
    from ftmoe.contract.dataset import load
    from ftmoe.predictor.data import window_ends
    from ftmoe.predictor.evaluate import evaluate, format_report
    from ftmoe.predictor.registry import load as load_model

    set_threads(args.threads)
    model = load_model(args.model)
    ds = load(args.data)
    if args.split == "test":
        protocol = model.info.get("protocol", {"test_share": 0.2, "val_share": 0.2})
        ends = protocol_splits(
            ds, model.window, model.lead, model.horizon, float(protocol["test_share"]), float(protocol["val_share"])
        ).test
    else:
        # every window of the file as one split: labelled targets, no recording break inside
        ends = window_ends(np.zeros(ds.shape[0], dtype=np.int8), 0, model.window, model.lead, model.horizon, ds.breaks, ds.labelled)
    if len(ends) == 0:
        raise ValueError(f"{args.data}: no labelled window for the model's window of {model.window} and horizon {model.horizon}")
    result = evaluate(model, ds, ends)
    print(format_report(model.kind, result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    if args.plot:
        from ftmoe.predictor.calibration import plot_reliability

        plot_reliability(result["reliability"], args.plot, f"{model.kind} on {args.data.name}: ECE {result['ece']:.3f}")
        print(f"  reliability diagram written to {args.plot}")
    return 0
