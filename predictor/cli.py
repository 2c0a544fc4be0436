"""``ftmoe train`` and ``ftmoe evaluate``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ftmoe.errors import reports
from ftmoe.predictor.errors import ModelFileError
from ftmoe.simulator.dataset import DatasetError


def register(commands: Any) -> None:
    train = commands.add_parser("train", help="train FT-MoE (or a baseline) on a v1 dataset")
    train.add_argument("--data", type=Path, required=True, help="dataset .npz (format v1)")
    train.add_argument("--out", type=Path, required=True, help="model folder to write")
    train.add_argument("--model-type", default="ftmoe", help="ftmoe (default) or a baseline name")
    train.add_argument("--epochs", type=int, default=30)
    train.add_argument("--window", type=int, default=6)
    train.add_argument("--lead", type=int, default=1, help="predict this many intervals ahead")
    train.add_argument("--batch-size", type=int, default=32)
    train.add_argument("--lr", type=float, default=1e-3)
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--patience", type=int, default=6)
    train.add_argument("--max-train-windows", type=int, help="subsample training windows (quick runs)")
    train.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="architecture override, e.g. --set hidden=64 --set gate=topk (repeatable)")
    train.add_argument("--quiet", action="store_true", help="no progress bars")
    train.set_defaults(func=cmd_train)

    ev = commands.add_parser("evaluate", help="score a model folder on a dataset")
    ev.add_argument("--model", type=Path, required=True)
    ev.add_argument("--data", type=Path, required=True)
    ev.add_argument("--split", choices=["all", "test"], default="all",
                    help="score every interval (default) or only the temporal test split")
    ev.add_argument("--json", type=Path, help="write the metrics as JSON here")
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


@reports(DatasetError, ModelFileError, ValueError)
def cmd_train(args: argparse.Namespace) -> int:
    import time

    from ftmoe.predictor.base import TrainOptions
    from ftmoe.predictor.data import temporal_split
    from ftmoe.predictor.evaluate import evaluate, format_report
    from ftmoe.predictor.registry import predictor_class
    from ftmoe.simulator.dataset import load

    cls = predictor_class(args.model_type)
    ds = load(args.data)
    options = TrainOptions(window=args.window, lead=args.lead, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                           seed=args.seed, patience=args.patience, max_train_windows=args.max_train_windows,
                           overrides=parse_overrides(args.set))
    splits = temporal_split(ds.shape[0], options.window, options.lead)
    if len(splits.train) == 0 or len(splits.val) == 0 or len(splits.test) == 0:
        raise ValueError(f"{args.data}: {ds.shape[0]} intervals are too few for window {options.window}: "
                         "each of train, validation and test needs at least one window")
    print(f"training {cls.kind} on {args.data}: {len(splits.train)} train / {len(splits.val)} validation / "
          f"{len(splits.test)} test windows, {ds.shape[1]} hosts, {ds.shape[2]} features", file=sys.stderr)
    model = cls()
    start = time.monotonic()
    history = model.fit(ds, splits, options, progress=not args.quiet)
    elapsed = time.monotonic() - start
    result = evaluate(model, ds, splits.test)
    model.info.update({"train_seconds": elapsed, "test": {k: v for k, v in result.items() if not isinstance(v, dict)},
                       "dataset": str(args.data), "seed": args.seed})
    model.save(args.out)
    (args.out / "metrics.json").write_text(json.dumps({"train_seconds": elapsed, "history": history, "test": result}, indent=2))
    report = format_report(cls.kind, result) + f"\n  trained in {elapsed:.1f}s; model written to {args.out}"
    (args.out / "report.txt").write_text(report + "\n")
    print(report)
    return 0


@reports(DatasetError, ModelFileError, ValueError)
def cmd_evaluate(args: argparse.Namespace) -> int:
    from ftmoe.predictor.base import load as load_model
    from ftmoe.predictor.data import all_ends, temporal_split
    from ftmoe.predictor.evaluate import evaluate, format_report
    from ftmoe.simulator.dataset import load

    model = load_model(args.model)
    ds = load(args.data)
    ends = temporal_split(ds.shape[0], model.window, model.lead).test if args.split == "test" else all_ends(ds.shape[0], model.window, model.lead)
    if len(ends) == 0:
        raise ValueError(f"{args.data}: too few intervals for the model's window of {model.window}")
    result = evaluate(model, ds, ends)
    print(format_report(model.kind, result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0
