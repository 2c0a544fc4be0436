"""Table 1: every model and baseline on the default dataset, several training seeds,
mean +- std of every metric, the simulator's oracle bound, and FT-MoE's ablations.

    .venv/bin/python bench/table1.py [--seeds 5] [--epochs 30] [--models ftmoe,mlp,...]

The dataset is the default one (`make data`: 16 hosts x 10,000 intervals, seed 0); the
seed varies the training. Results are written after every model, so a long run that is
stopped keeps what it finished.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import RESULTS, write  # noqa: E402

ROWS: list[tuple[str, str, dict[str, Any]]] = [
    ("FT-MoE", "ftmoe", {}),
    ("FT-MoE w/o EAGate (static top-2)", "ftmoe", {"gate": "topk"}),
    ("FT-MoE w/o CMHA", "ftmoe", {"use_cmha": False}),
    ("FT-MoE w/o graph path", "ftmoe", {"use_graph": False}),
    ("PreGAN+-style", "pregan_plus", {}),
    ("PreGAN-style", "pregan", {}),
    ("Gradient-boosted trees", "gbt", {}),
    ("CMODLB-style", "cmodlb", {}),
    ("Seed MLP (sigmoid + theta)", "mlp", {}),
    ("Seed Markov state transitions", "markov", {}),
    ("PromQL predict_linear rules", "promql", {}),
    ("PCFT-style", "pcft", {}),
    ("ECLB-style", "eclb", {}),
    ("DFTM-style", "dftm", {}),
]
METRICS = [
    "accuracy",
    "precision",
    "recall",
    "f1",
    "type_accuracy",
    "type_macro_f1",
    "hr@100",
    "hr@150",
    "ndcg@100",
    "ndcg@150",
    "mean_lead_intervals",
]
DETERMINISTIC = {"dftm", "pcft", "eclb", "promql", "markov"}


def mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", default="data/sim-H16-T10000-s0.npz")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--patience", type=int, default=6)
    parser.add_argument("--rows", help="comma-separated row names to run (default: all)")
    parser.add_argument("--out", default="table1")
    parser.add_argument("--merge", action="append", default=[], help="also read rows from this partial results file")
    parser.add_argument("--report-only", action="store_true", help="write the table from the partial results; train nothing")
    args = parser.parse_args()

    from ftmoe.contract.dataset import load
    from ftmoe.predictor.base import TrainOptions
    from ftmoe.predictor.data import temporal_split
    from ftmoe.predictor.evaluate import evaluate
    from ftmoe.predictor.registry import predictor_class

    ds = load(args.data)
    rows = [r for r in ROWS if not args.rows or r[0] in args.rows.split(",") or r[1] in args.rows.split(",")]
    partial = RESULTS / f"{args.out}.partial.json"
    results: dict[str, Any] = json.loads(partial.read_text()) if partial.is_file() else {}
    config = {"data": args.data, "epochs": args.epochs, "patience": args.patience}
    if results.get("_config", config) != config:
        sys.exit(f"{partial} was made with {results.get('_config')}, not {config}: delete it or pass the same options")
    for extra in args.merge:
        for key, value in json.loads(Path(extra).read_text()).items():
            if not key.startswith("_") and len(value.get("runs", [])) > len(results.get(key, {}).get("runs", [])):
                results[key] = value
    oracle = results.get("_oracle")
    for name, kind, overrides in [] if args.report_only else rows:
        runs = results.get(name, {}).get("runs", [])
        seeds = 1 if kind in DETERMINISTIC else args.seeds
        for seed in range(len(runs), seeds):
            options = TrainOptions(epochs=args.epochs, patience=args.patience, seed=seed, overrides=dict(overrides))
            splits = temporal_split(ds.shape[0], options.window, options.lead)
            model = predictor_class(kind)()
            t0 = time.monotonic()
            model.fit(ds, splits, options, progress=False)
            train_s = time.monotonic() - t0
            r = evaluate(model, ds, splits.test)
            oracle = r.get("oracle", oracle)
            runs.append({"seed": seed, "train_seconds": train_s, **{m: r[m] for m in METRICS}})
            print(f"{name} seed {seed}: F1 {r['f1']:.4f} HR@100 {r['hr@100']:.4f} ({train_s:.0f}s)", file=sys.stderr, flush=True)
            results[name] = {"kind": kind, "overrides": overrides, "runs": runs}
            partial.write_text(json.dumps({**results, "_oracle": oracle, "_config": config}, indent=2))
    oracle = oracle or results.get("_oracle")
    if args.report_only:
        args.seeds = max((len(r["runs"]) for k, r in results.items() if not k.startswith("_")), default=args.seeds)
    table = []
    for name, kind, overrides in ROWS:
        if name not in results:
            continue
        runs = results[name]["runs"]
        stats = {m: mean_std([r[m] for r in runs]) for m in METRICS}
        table.append(
            {
                "model": name,
                "kind": kind,
                "overrides": overrides,
                "seeds": len(runs),
                "runs": runs,
                **{m: {"mean": s[0], "std": s[1]} for m, s in stats.items()},
            }
        )
    cols = ["accuracy", "precision", "recall", "f1", "hr@100", "ndcg@100", "hr@150", "ndcg@150", "type_macro_f1", "mean_lead_intervals"]
    md = ["| model | seeds | " + " | ".join(cols) + " |", "|---|---|" + "---|" * len(cols)]
    for row in table:
        cells = [f"{row[c]['mean']:.4f} ± {row[c]['std']:.4f}" if c != "mean_lead_intervals" else f"{row[c]['mean']:.2f}" for c in cols]
        md.append(f"| {row['model']} | {row['seeds']} | " + " | ".join(cells) + " |")
    if oracle:
        md.append(
            f"| oracle bound (simulator, lead {oracle['lead']}) | - | {oracle['accuracy']:.4f} | {oracle['precision']:.4f} | "
            f"{oracle['recall']:.4f} | {oracle['f1']:.4f} | - | - | - | - | - | - |"
        )
    md.append(
        f"\nDataset `{args.data}` (test split: last 20 % of intervals). Training seeds 0..{args.seeds - 1} "
        f"(rule baselines are deterministic: one run), up to {args.epochs} epochs, early stopping patience {args.patience}. "
        f"Command: `.venv/bin/python bench/table1.py --seeds {args.seeds} --epochs {args.epochs}`"
    )
    write(args.out, {"dataset": args.data, "seeds": args.seeds, "epochs": args.epochs, "oracle": oracle, "rows": table}, "\n".join(md))


if __name__ == "__main__":
    main()
