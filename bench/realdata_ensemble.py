"""Seed ensembles and an FT-MoE + gbt blend on real data, under realdata.py's protocol and
rolling-origin folds: does averaging models close FT-MoE's ranking gap to gbt (issue #13)?

    .venv/bin/python bench/realdata_ensemble.py                      # ASD 3 folds, Online Boutique 2
    .venv/bin/python bench/realdata_ensemble.py --datasets asd --folds 1 --seeds 2 --epochs 5   # a quick look
    .venv/bin/python bench/realdata_ensemble.py --folds 1 --seeds 15 --members 3 --normalisation ple   # 5 ensembles of 3

For every (dataset, fold) each model type is trained with ``--seeds`` seeds exactly as
realdata.py trains it (blocked validation, Platt calibration on validation). Compared on the
fold's test windows:
- single: each seed's own calibrated risk and threshold (mean over seeds);
- ensemble: the mean of the seeds' calibrated risks, its threshold chosen on the same mean
  over the validation windows; with ``--members K`` the seeds form disjoint ensembles of K
  (seeds 0..K-1, K..2K-1, ...), each scored alone, so an ensemble has a mean ± std like a
  single model (a deep ensemble is one model whose training draws K seeds);
- blend: the mean of the FT-MoE and gbt ensembles, threshold likewise on validation.
Nothing is fitted on test windows. PR-AUC is average precision over host-windows (a fault
within the horizon); F1 is at the validation-chosen threshold. Results:
bench/results/realdata_ensemble.{json,md}, and
realdata_ensemble-<encoding>-members<K>.{json,md} for a run with those options.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import realdata  # noqa: E402  (the sibling benchmark, imported as a script module)

FOLDS = {"asd": 3, "nezha-online-boutique": 2}  # Online Boutique: a third origin leaves 199 training intervals
MODELS = ("ftmoe", "gbt")


def scores(val: np.ndarray, val_pos: np.ndarray, test: np.ndarray, test_pos: np.ndarray) -> dict[str, float]:
    """PR-AUC on test, and F1 on test at the threshold that is best on validation."""
    from ftmoe.predictor.base import average_precision, best_threshold
    from ftmoe.predictor.metrics import detection

    threshold = best_threshold(val, val_pos)
    return {"pr_auc": average_precision(test, test_pos), "f1": detection(test_pos, test >= threshold)["f1"], "threshold": threshold}


def fold_probabilities(
    name: str, model_type: str, seed: int, epochs: int, fold: int, normalisation: str | None = None
) -> dict[str, np.ndarray]:
    model, ds, splits, _ = realdata.fit_protocol(name, model_type, seed, epochs, fold=fold, normalisation=normalisation)
    return {
        "val": model.predict(ds, splits.val).fault_probability,
        "val_pos": model.targets(ds, splits.val) > 0,
        "test": model.predict(ds, splits.test).fault_probability,
        "test_pos": model.targets(ds, splits.test) > 0,
    }


def spread(got: list[dict[str, float]]) -> dict[str, Any]:
    """PR-AUC and F1 as mean ± std over ``got``, and each one's validation threshold."""
    out: dict[str, Any] = {
        m: {"mean": float(np.mean([s[m] for s in got])), "std": float(np.std([s[m] for s in got]))} for m in ("pr_auc", "f1")
    }
    out["thresholds"] = [float(s["threshold"]) for s in got]
    return out


def compare(runs: dict[str, list[dict[str, np.ndarray]]], members: int | None = None) -> dict[str, Any]:
    """One fold's figures: single seeds (mean ± std), each model's seed ensembles (disjoint
    groups of ``members`` seeds; None: one of them all), the blend of the ensembles."""
    out: dict[str, Any] = {}
    groups: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
    first = next(iter(runs.values()))[0]
    for model_type, seeds in runs.items():
        out[f"{model_type} single"] = spread([scores(r["val"], r["val_pos"], r["test"], r["test_pos"]) for r in seeds])
        k = members or len(seeds)
        groups[model_type] = [
            (np.mean([r["val"] for r in seeds[i : i + k]], axis=0), np.mean([r["test"] for r in seeds[i : i + k]], axis=0))
            for i in range(0, len(seeds) - k + 1, k)
        ]
        out[f"{model_type} ensemble"] = spread([scores(v, first["val_pos"], t, first["test_pos"]) for v, t in groups[model_type]])
    if len(groups) == 2:
        blends = [scores((fv + gv) / 2, first["val_pos"], (ft + gt) / 2, first["test_pos"]) for (fv, ft), (gv, gt) in zip(*groups.values())]
        out["blend"] = spread(blends)
    return out


def value(v: Any) -> float:
    return float(v["mean"]) if isinstance(v, dict) else float(v)


def table(results: dict[str, dict[str, dict[str, Any]]]) -> str:
    lines = [
        "| dataset | fold | " + " | ".join(f"{k} PR-AUC" for k in VARIANTS) + " | " + " | ".join(f"{k} F1" for k in VARIANTS) + " |",
        "|---|---|" + "---|" * (2 * len(VARIANTS)),
    ]
    for name, folds in results.items():
        for fold, figures in [*folds.items(), ("mean", pooled(folds))]:
            cells = [realdata.cell(figures[k]["pr_auc"]) if k in figures else "n/a" for k in VARIANTS]
            cells += [realdata.cell(figures[k]["f1"]) if k in figures else "n/a" for k in VARIANTS]
            lines.append(f"| {name} | {fold} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


VARIANTS = ["gbt single", "gbt ensemble", "ftmoe single", "ftmoe ensemble", "blend"]


def pooled(folds: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Each variant's figures averaged over the folds."""
    out: dict[str, Any] = {}
    for k in VARIANTS:
        got = [f[k] for f in folds.values() if k in f]
        if got:
            out[k] = {m: float(np.mean([value(g[m]) for g in got])) for m in ("pr_auc", "f1")}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", default=",".join(FOLDS))
    parser.add_argument("--folds", type=int, help="rolling-origin folds for every dataset (default: ASD 3, Online Boutique 2)")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument(
        "--members", type=int, help="seeds per ensemble: disjoint groups, each scored alone (default: one ensemble of all seeds)"
    )
    parser.add_argument("--normalisation", help="FT-MoE's input encoding (default: the model's own default, zscore)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    if args.members is not None and not 1 <= args.members <= args.seeds:
        parser.error(f"--members must be between 1 and --seeds ({args.seeds}), got {args.members}")
    from ftmoe.predictor.cli import set_threads

    for name in args.datasets.split(","):
        if name not in realdata.DATASETS:
            parser.error(f"--datasets: unknown dataset {name!r}; choose from {', '.join(realdata.DATASETS)}")
    set_threads(args.threads)
    started = time.monotonic()
    results: dict[str, dict[str, dict[str, Any]]] = {}
    for name in args.datasets.split(","):
        for fold in range(args.folds or FOLDS.get(name, 1)):
            runs = {m: [] for m in MODELS}
            for model_type in MODELS:
                for seed in range(args.seeds):
                    encoding = args.normalisation if model_type == "ftmoe" else None
                    runs[model_type].append(fold_probabilities(name, model_type, seed, args.epochs, fold, encoding))
                    print(f"[{time.monotonic() - started:6.0f}s] {name} fold {fold} {model_type} seed {seed}", file=sys.stderr, flush=True)
            results.setdefault(name, {})[str(fold)] = compare(runs, args.members)
    text = table(results)
    command = " ".join(["bench/realdata_ensemble.py", *sys.argv[1:]])
    members = args.members or args.seeds
    groups = args.seeds // members
    ensembles = (
        f"{groups} disjoint ensembles of {members} seeds (mean ± std over the ensembles)"
        if groups > 1
        else f"the mean of those {members} calibrated risks"
    )
    note = (
        f"\n\nSingle: mean over {args.seeds} seeds of each seed's own calibrated risk and validation threshold. Ensemble: "
        f"{ensembles}, threshold chosen on validation. Blend: the mean of the FT-MoE and "
        f"gbt ensembles. PR-AUC over the fold's test host-windows; F1 at the validation threshold. {args.epochs} epochs; "
        f"FT-MoE inputs {args.normalisation or 'zscore'}. "
        f"Measured on a {realdata.MACHINE}. Command: `.venv/bin/python {command}`"
    )
    print(text + note)
    out = {
        "command": f".venv/bin/python {command}",
        "machine": realdata.MACHINE,
        "seeds": args.seeds,
        "epochs": args.epochs,
        "members": members,
        "normalisation": args.normalisation or "zscore",
        "results": results,
        "mean_over_folds": {name: pooled(folds) for name, folds in results.items()},
    }
    # The default run keeps its file; a grouped or re-encoded run gets its own beside it.
    stem = (
        "realdata_ensemble" + (f"-{args.normalisation}" if args.normalisation else "") + (f"-members{args.members}" if args.members else "")
    )
    realdata.RESULTS.mkdir(parents=True, exist_ok=True)
    (realdata.RESULTS / f"{stem}.json").write_text(json.dumps(out, indent=2))
    (realdata.RESULTS / f"{stem}.md").write_text(text + note + "\n")


if __name__ == "__main__":
    main()
