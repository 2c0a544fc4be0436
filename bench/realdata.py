"""Every model type on real data (ASD, Nezha) and on the simulator's default dataset,
under one protocol: blocked validation (calibration, threshold, early stopping), the
latest labelled share as the test split, scores on the test split only.

    .venv/bin/python bench/realdata.py --seeds 5                     # the README table
    .venv/bin/python bench/realdata.py --datasets asd --models ftmoe,gbt --seeds 2 --variant hidden=64
    .venv/bin/python bench/realdata.py --folds 3 --datasets asd,nezha-online-boutique --models ftmoe,gbt,mlp,pregan_plus

``--folds K`` is a rolling-origin evaluation (``predictor.data.rolling_origin``): fold 0 is the
table's split, fold k tests on the block just before fold k-1's with a model trained only on
what came before it. Its rows pool every (fold, seed) run and keep each fold's mean
(results: bench/results/realdata_folds.{json,md}).

Datasets are made on first use under data/ (ftmoe dataset from-asd / from-nezha /
simulate). Rows are saved as they finish (bench/results/realdata.partial.json), so an
interrupted run resumes. Results: bench/results/realdata.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from ftmoe.predictor.config import NORMALISATIONS

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
MACHINE = "2-core x86-64, 24 GiB (the project's CI machine kind)"
RESULTS = ROOT / "bench" / "results"

DATASETS: dict[str, dict[str, Any]] = {
    "asd": {
        "path": "data/asd.npz",
        "make": ["dataset", "from-asd", str(SHARED / "asd"), "--out", "data/asd.npz"],
        "horizon": 3,
        "features": {"cpu_utilisation": "auto", "memory_used_fraction": "auto", "disk_used_fraction": "none"},
    },
    "nezha-train-ticket": {
        "path": "data/nezha-train-ticket.npz",
        "horizon": 3,
        "make": ["dataset", "from-nezha", str(SHARED / "nezha"), "--system", "train-ticket", "--out", "data/nezha-train-ticket.npz"],
        "features": {
            "cpu_utilisation": "cpu_usage_rate_percent/100",
            "memory_used_fraction": "memory_usage_rate_percent/100",
            "disk_used_fraction": "none",
        },
    },
    "nezha-online-boutique": {
        "path": "data/nezha-online-boutique.npz",
        "horizon": 3,
        "make": ["dataset", "from-nezha", str(SHARED / "nezha"), "--system", "online-boutique", "--out", "data/nezha-online-boutique.npz"],
        "features": {
            "cpu_utilisation": "cpu_usage_rate_percent/100",
            "memory_used_fraction": "memory_usage_rate_percent/100",
            "disk_used_fraction": "none",
        },
    },
    # the paper's setting: predict the next interval
    "sim-default": {
        "path": "data/sim-H16-T10000-s0.npz",
        "horizon": 1,
        "make": ["simulate", "--hosts", "16", "--intervals", "10000", "--seed", "0", "--out", "data/sim-H16-T10000-s0.npz"],
        "features": {},
    },
}
NEURAL = {"ftmoe", "pregan", "pregan_plus"}
SEEDED = NEURAL | {"gbt", "cmodlb", "mlp"}
MODELS = ["ftmoe", "gbt", "mlp", "cmodlb", "pregan", "pregan_plus", "markov", "dftm", "pcft", "eclb", "promql"]
METRICS = [
    "precision",
    "recall",
    "f1",
    "pr_auc",
    "roc_auc",
    "ece",
    "brier",
    "type_accuracy",
    "type_majority_accuracy",
    "warned_before_onset_share",
    "fault_detection_rate",
    "median_lead_intervals",
    "val_positives",
    "val_pr_auc",
    "threshold",
]
SHOWN = ["f1", "precision", "recall", "pr_auc", "ece", "type_accuracy", "warned_before_onset_share", "median_lead_intervals"]


def ensure(name: str) -> Path:
    spec = DATASETS[name]
    path = ROOT / spec["path"]
    if not path.is_file():
        print(f"making {path} ...", file=sys.stderr, flush=True)
        subprocess.run([str(ROOT / ".venv" / "bin" / "ftmoe"), *spec["make"]], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    return path


def fit_protocol(
    name: str,
    model_type: str,
    seed: int,
    epochs: int,
    overrides: dict[str, Any] | None = None,
    options_overrides: dict[str, Any] | None = None,
    fold: int = 0,
    normalisation: str | None = None,
    host_baseline: bool = False,
) -> tuple[Any, Any, Any, float]:
    """A model trained on dataset ``name`` under the bench's protocol (blocked validation 0.2,
    test 0.2), on the file as it stood before rolling-origin fold ``fold`` (0: all of it): the
    model, the dataset, its splits and the training seconds."""
    from ftmoe.contract.dataset import load
    from ftmoe.predictor.base import TrainOptions, fit_model
    from ftmoe.predictor.cli import protocol_splits
    from ftmoe.predictor.data import rolling_origin
    from ftmoe.predictor.registry import predictor_class

    spec = DATASETS[name]
    ds = rolling_origin(load(ensure(name)), fold, 0.2)
    options = TrainOptions(
        window=6,
        lead=1,
        horizon=spec["horizon"],
        epochs=epochs,
        seed=seed,
        overrides=(overrides or {}) if model_type == "ftmoe" else {},
        feature_map=spec["features"],
        **({"normalisation": normalisation} if normalisation else {}),  # every model type's (a no-op for trees and rules)
        host_baseline=host_baseline,
    )
    if options_overrides and model_type == "ftmoe":
        from dataclasses import replace

        options = replace(options, **options_overrides)
    splits = protocol_splits(ds, options.window, options.lead, options.horizon, 0.2, 0.2)
    model = predictor_class(model_type)()
    start = time.monotonic()
    fit_model(model, ds, splits, options, progress=False)
    return model, ds, splits, time.monotonic() - start


def run_one(
    name: str,
    model_type: str,
    seed: int,
    epochs: int,
    overrides: dict[str, Any],
    options_overrides: dict[str, Any] | None = None,
    fold: int = 0,
    normalisation: str | None = None,
    host_baseline: bool = False,
) -> dict[str, Any]:
    from ftmoe.predictor.evaluate import evaluate

    model, ds, splits, fit_seconds = fit_protocol(
        name, model_type, seed, epochs, overrides, options_overrides, fold, normalisation, host_baseline
    )
    start = time.monotonic()
    result = evaluate(model, ds, splits.test)
    result["val_positives"] = splits.val_positives
    result["val_pr_auc"] = model.info["validation"]["pr_auc"]  # what to choose variants by
    if "normalisation" in model.info:  # --normalisation auto: what validation chose
        result["normalisation"] = model.info["normalisation"]["chosen"]
    result["seconds"] = fit_seconds + time.monotonic() - start
    kept = ["normalisation"] if "normalisation" in result else []
    return {k: result.get(k) for k in METRICS + ["seconds", "faults_scored", "positives", "windows", *kept]}


def everything_row(name: str, folds: int = 1) -> dict[str, Any]:
    """An alarm on every host-window of the test split (of every fold's, pooled)."""
    from ftmoe.contract.dataset import load
    from ftmoe.predictor.cli import protocol_splits
    from ftmoe.predictor.data import rolling_origin, targets

    spec = DATASETS[name]
    full = load(ensure(name))
    pos = []
    for fold in range(folds):
        ds = rolling_origin(full, fold, 0.2)
        splits = protocol_splits(ds, 6, 1, spec["horizon"], 0.2, 0.2)
        pos.append(targets(ds.labels, 1, spec["horizon"])[splits.test] > 0)
    precision = float(np.concatenate(pos).mean())
    return {
        "precision": precision,
        "recall": 1.0,
        "f1": 2 * precision / (1 + precision),
        "pr_auc": precision,
        "roc_auc": 0.5,
        "ece": None,
        "type_accuracy": None,
        "warned_before_onset_share": 1.0,
        "median_lead_intervals": None,
    }


def aggregate(runs: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for m in METRICS + ["seconds"]:
        vals = [r[m] for r in runs if r.get(m) is not None and not (isinstance(r[m], float) and np.isnan(r[m]))]
        out[m] = {"mean": float(np.mean(vals)), "std": float(np.std(vals))} if vals else None
    chosen = [r["normalisation"] for r in runs if r.get("normalisation")]
    if chosen:  # --normalisation auto: how often validation chose each
        out["normalisation_chosen"] = {m: chosen.count(m) for m in sorted(set(chosen))}
    return out


def merge_rows(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``old`` with each (dataset, model) row that ``new`` has replaced in place, and new
    ones after the last row of their dataset (or at the end)."""
    fresh = {(r["dataset"], r["model"]): r for r in new}
    out = [fresh.pop((r["dataset"], r["model"]), r) for r in old]
    for key, r in fresh.items():
        last = max((i for i, o in enumerate(out) if o["dataset"] == key[0]), default=len(out) - 1)
        out.insert(last + 1, r)
    return out


def cell(v: Any, digits: int = 3) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, dict):
        return f"{v['mean']:.{digits}f} ± {v['std']:.{digits}f}" if v["std"] > 0 else f"{v['mean']:.{digits}f}"
    return f"{v:.{digits}f}"


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["| dataset | model | seeds | " + " | ".join(SHOWN) + " |", "|---|---|---|" + "---|" * len(SHOWN)]
    for r in rows:
        lines.append(f"| {r['dataset']} | {r['model']} | {r['seeds']} | " + " | ".join(cell(r.get(m)) for m in SHOWN) + " |")
    return "\n".join(lines)


def fold_table(rows: list[dict[str, Any]]) -> str:
    """Each fold's mean PR-AUC and F1: whether a model's lead holds on every test block."""
    folds = max(len(r.get("folds") or []) for r in rows)
    head = " | ".join(f"fold {f} PR-AUC | fold {f} F1" for f in range(folds))
    lines = [f"| dataset | model | {head} |", "|---|---|" + "---|" * (2 * folds)]
    for r in rows:
        per = r.get("per_fold") or {}
        cells = " | ".join(f"{cell(per.get(str(f), {}).get(m))}" for f in range(folds) for m in ("pr_auc", "f1"))
        lines.append(f"| {r['dataset']} | {r['model']} | {cells} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--sim-seeds", type=int, help="seeds on the simulator's dataset (default: --seeds; it is 10x larger)")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--folds", type=int, default=1, help="rolling-origin folds (1: the latest test split only); results go to realdata_folds.*"
    )
    parser.add_argument("--variant", action="append", default=[], metavar="KEY=VALUE", help="FT-MoE architecture override (ablations)")
    parser.add_argument("--tag", default="", help="name of this run's FT-MoE rows (ablations); results go to realdata-TAG.*")
    parser.add_argument(
        "--normalisation",
        choices=[*NORMALISATIONS, "auto"],
        help="the networks' input normalisation (ftmoe train --normalisation); default: TrainOptions' own. Its rows are "
        "named model [normalisation] and kept beside the default's",
    )
    parser.add_argument(
        "--members",
        type=int,
        default=1,
        help="FT-MoE as a deep ensemble of this many networks (ftmoe train --members); seed s trains seeds s*K..s*K+K-1, "
        "so the seeds' ensembles share no network. Its rows are named model [..., K members] and kept beside the others",
    )
    parser.add_argument(
        "--host-baseline",
        action="store_true",
        help="the learned models read each feature as its deviation from the host's own median (ftmoe train "
        "--host-baseline). Its rows are named model [host baseline] and kept beside the others",
    )
    args = parser.parse_args()
    from ftmoe.predictor.cli import parse_overrides, set_threads
    from ftmoe.predictor.registry import predictor_class

    if args.folds < 1:
        parser.error(f"--folds {args.folds}: at least 1 (1 = the latest test split only)")
    if args.members < 1:
        parser.error(f"--members {args.members}: at least 1")
    kept_beside = bool(args.normalisation) or args.members > 1 or args.host_baseline  # rows of their own, the others' rows kept
    set_threads(args.threads)
    overrides = parse_overrides(args.variant)
    stem = f"realdata-{args.tag}" if args.tag else "realdata_folds" if args.folds > 1 else "realdata"
    partial_path = RESULTS / f"{stem}.partial.json"
    done: dict[str, Any] = json.loads(partial_path.read_text()) if partial_path.is_file() else {}
    RESULTS.mkdir(parents=True, exist_ok=True)
    rows = []
    started = time.monotonic()
    for name in args.datasets.split(","):
        rows.append(
            {
                "dataset": name,
                "model": "alarm on everything",
                "seeds": 1,
                **everything_row(name, args.folds),
                **({"folds": list(range(args.folds))} if args.folds > 1 else {}),
            }
        )
        for model_type in args.models.split(","):
            n_seeds = args.sim_seeds if name.startswith("sim") and args.sim_seeds else args.seeds
            norm = args.normalisation if args.normalisation and predictor_class(model_type).normalises else None
            members = args.members if model_type == "ftmoe" else 1
            labels = [norm] if norm else []
            labels += [f"{members} members"] if members > 1 else []
            baseline = args.host_baseline and predictor_class(model_type).takes_host_baseline
            labels += ["host baseline"] if baseline else []
            seeds = range(n_seeds) if model_type in SEEDED else range(1)
            runs: dict[int, list[dict[str, Any]]] = {}
            for fold in range(args.folds):
                for seed in seeds:
                    key = f"{name}|{model_type}|{seed}|{args.epochs}|{json.dumps(overrides, sort_keys=True)}"
                    key += f"|fold{fold}" if fold else ""  # fold 0 keeps the main table's keys
                    key += f"|{norm}" if norm else ""
                    key += f"|members{members}" if members > 1 else ""
                    key += "|hostbaseline" if baseline else ""
                    if key not in done:
                        try:
                            ensemble = {"members": members} if members > 1 else None
                            done[key] = run_one(
                                name, model_type, seed * members, args.epochs, overrides, ensemble, fold, args.normalisation, baseline
                            )
                        except ValueError as err:
                            done[key] = {"error": str(err)}
                        partial_path.write_text(json.dumps(done, indent=1))
                        r = done[key]
                        print(
                            f"[{time.monotonic() - started:6.0f}s] {name} {model_type} fold {fold} seed {seed}: "
                            + (
                                f"F1 {r['f1']:.3f} PR-AUC {cell(r['pr_auc'])} ECE {cell(r['ece'])} ({r['seconds']:.0f}s)"
                                if "error" not in r
                                else f"error: {r['error']}"
                            ),
                            file=sys.stderr,
                            flush=True,
                        )
                    if "error" not in done[key]:
                        runs.setdefault(fold, []).append(done[key])
            pooled = [r for fold_runs in runs.values() for r in fold_runs]
            if pooled:
                row = {
                    "dataset": name,
                    "model": model_type + (f" [{args.tag}]" if args.tag else "") + (f" [{', '.join(labels)}]" if labels else ""),
                    "seeds": len(seeds),
                    "horizon": DATASETS[name]["horizon"],
                    **aggregate(pooled),
                }
                if args.folds > 1:
                    row["folds"] = sorted(runs)
                    row["per_fold"] = {str(f): aggregate(fold_runs) for f, fold_runs in runs.items()}
                rows.append(row)
    command = f".venv/bin/python bench/realdata.py --seeds {args.seeds} --epochs {args.epochs}" + (
        f" --sim-seeds {args.sim_seeds}" if args.sim_seeds else ""
    )
    if args.folds > 1:
        command += f" --folds {args.folds}"
    if args.folds > 1 or kept_beside:
        command += f" --datasets {args.datasets} --models {args.models}"
    if args.normalisation:
        command += f" --normalisation {args.normalisation}"
    if args.members > 1:
        command += f" --members {args.members}"
    if args.host_baseline:
        command += " --host-baseline"
    ran = args.datasets.split(",")
    variant = "|".join(
        [
            *([args.normalisation] if args.normalisation else []),
            *([f"members{args.members}"] if args.members > 1 else []),
            *(["hostbaseline"] if args.host_baseline else []),
        ]
    )
    commands = {f"{d}|{variant}" if variant else d: command for d in ran}
    if args.folds > 1 or kept_beside:
        # a run of some datasets (or of one normalisation's rows) keeps the other rows of the last run
        previous = json.loads((RESULTS / f"{stem}.json").read_text()) if (RESULTS / f"{stem}.json").is_file() else {}
        before = previous.get("commands") or {
            r["dataset"]: f".venv/bin/python {previous['command']}" for r in previous.get("rows") or [] if previous.get("command")
        }  # results written before the per-dataset commands were kept
        commands = {**before, **commands}
        old = [r for r in previous.get("rows") or [] if kept_beside or r["dataset"] not in ran]
        rows = merge_rows(old, rows)
        done = {**(previous.get("runs") or {}), **done}
        command = "; ".join(f"`{c}`" for c in dict.fromkeys(commands.values()))
    else:
        command = f"`{command}`"
    if args.folds > 1:
        text = table(rows) + "\n\n" + fold_table(rows)
        scope = (
            "Rolling-origin folds, each testing on 20 % of the labelled time and faults just before the previous fold's test "
            "block, with a model trained only on what came before it (fold 0 is the README's main table's split). The first "
            "table pools every (fold, seed) run: mean ± std over folds x seeds"
        )
    else:
        text = table(rows)
        scope = "Test split only (the latest 20 % of labelled time and faults)"
    note = (
        f"\n\n{scope}; validation blocks (20 %, widened to hold "
        f"30 positives) choose early stopping, calibration (Platt) and the threshold. Horizon 3 intervals on real data "
        f"(ASD 5 min, Nezha 1 min per interval), 1 on the simulator (the paper's setting). Mean ± std over training seeds "
        f"(rules and the Markov detector are deterministic: one run). Measured on a {MACHINE}. Command: {command}"
    )
    print(text + note)
    out = {
        "rows": rows,
        "command": " ".join(sys.argv),
        "seeds": args.seeds,
        "epochs": args.epochs,
        "folds": args.folds,
        "commands": commands,
        "overrides": overrides,
        "machine": MACHINE,
        "runs": done,
    }
    (RESULTS / f"{stem}.json").write_text(json.dumps(out, indent=2))
    (RESULTS / f"{stem}.md").write_text(text + note + "\n")


if __name__ == "__main__":
    main()
