"""Why FT-MoE ranks badly on real data: architecture and training ablations on ASD and
Nezha Online Boutique, under the protocol of bench/realdata.py (same splits, same
calibration, test split only), 2 training seeds each.

    .venv/bin/python bench/realdata_ablation.py                       # every variant
    .venv/bin/python bench/realdata_ablation.py --only clip5,posw1    # some

An architecture override is a ModelConfig field (``hidden``, ``use_cmha``, ...); one
that starts with ``_`` is a TrainOptions field (``_lr``, ``_weight_decay``, ...).
Results: bench/results/realdata_ablation.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
import realdata  # noqa: E402  (the sibling benchmark, imported as a script module)

VARIANTS: dict[str, dict[str, Any]] = {
    "default (window stats)": {},
    "no window stats (round 1)": {"window_stats": False},
    "no CMHA": {"use_cmha": False},
    "no graph, no CMHA": {"use_graph": False, "use_cmha": False},
    "static top-2 gate": {"gate": "topk"},
    "dropout 0.3": {"dropout": 0.3},
    "hidden 64": {"hidden": 64},
    "lr 3e-4, 30 epochs": {"_lr": 3e-4, "_epochs": 30, "_patience": 10},
    "input noise 0.3": {"input_noise": 0.3},
    "weight decay 0.2": {"_weight_decay": 0.2},
    "inputs clipped to ±5": {"input_clip": 5.0},
    "inputs clipped to ±3": {"input_clip": 3.0},
    "no positive up-weighting": {"_pos_weight": "none"},
    "clip ±5, no up-weighting": {"input_clip": 5.0, "_pos_weight": "none"},
    "nowcast residual input": {"nowcast": True},
    "nowcast pre-trained on unlabelled history": {"nowcast": True, "_pretrain_epochs": 3},
    "weights' moving average (EMA 0.99)": {"_ema": 0.99},
    "quantile (rank-Gaussian) inputs": {"_normalisation": "quantile"},
    "quantile inputs without CMHA": {"_normalisation": "quantile", "use_cmha": False},
    "quantile and z-score inputs side by side": {"_normalisation": "both"},
    "piecewise-linear encoding (8 quantile bins)": {"_normalisation": "ple"},
    "piecewise-linear encoding without CMHA": {"_normalisation": "ple", "use_cmha": False},
}
DATASETS = ["asd", "nezha-online-boutique"]
MLP_PLE = "mlp, piecewise-linear encoding"
SHOWN = ["f1", "pr_auc", "roc_auc", "ece", "warned_before_onset_share"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--only", help="comma-separated variant names")
    args = parser.parse_args()
    from ftmoe.predictor.cli import set_threads

    set_threads(2)
    out_path = realdata.RESULTS / "realdata_ablation.json"
    done: dict[str, Any] = json.loads(out_path.read_text())["variants"] if out_path.is_file() else {}
    chosen = args.only.split(",") if args.only else list(VARIANTS)
    for name in chosen:
        ov = VARIANTS[name]
        arch = {k: v for k, v in ov.items() if not k.startswith("_")}
        opts = {k[1:]: v for k, v in ov.items() if k.startswith("_") and k != "_epochs"}
        for d in DATASETS:
            runs = [realdata.run_one(d, "ftmoe", s, ov.get("_epochs", 20), arch, opts) for s in range(args.seeds)]
            done.setdefault(name, {})[d] = realdata.aggregate(runs)
            print(f"{name:28s} {d:24s} " + " ".join(f"{m} {realdata.cell(done[name][d][m])}" for m in SHOWN), flush=True)
    for base in ("gbt", "mlp"):
        for d in DATASETS:
            if d not in done.get(base, {}):
                done.setdefault(base, {})[d] = realdata.aggregate([realdata.run_one(d, base, s, 20, {}) for s in range(args.seeds)])
    # An input encoding that helps FT-MoE is given to the MLP too: the same protocol for every network.
    for d in DATASETS:
        if "piecewise-linear encoding (8 quantile bins)" in done and d not in done.get(MLP_PLE, {}):
            runs = [realdata.run_one(d, "mlp", s, 20, {}, normalisation="ple") for s in range(args.seeds)]
            done.setdefault(MLP_PLE, {})[d] = realdata.aggregate(runs)
    lines = [
        "| variant | " + " | ".join(f"{d} {m}" for d in DATASETS for m in ("validation PR-AUC", "PR-AUC", "F1")) + " |",
        "|---|" + "---|" * (3 * len(DATASETS)),
    ]
    for name in [*VARIANTS, "gbt", "mlp", MLP_PLE]:
        if name in done:
            lines.append(
                f"| {name} | "
                + " | ".join(
                    f"{realdata.cell(done[name][d].get('val_pr_auc'))} | {realdata.cell(done[name][d]['pr_auc'])} | "
                    f"{realdata.cell(done[name][d]['f1'])}"
                    for d in DATASETS
                )
                + " |"
            )
    text = "\n".join(lines) + (
        f"\n\nFT-MoE variants (one change each from the default), {args.seeds} seeds, test split of "
        "bench/realdata.py's protocol; gbt and mlp for reference. Validation PR-AUC (the blocks that chose early "
        "stopping, calibration and threshold) is the score to choose a default by; rows run before it was recorded "
        "show n/a. Command: "
        "`.venv/bin/python bench/realdata_ablation.py`"
    )
    print(text)
    out_path.write_text(json.dumps({"seeds": args.seeds, "datasets": DATASETS, "variants": done}, indent=2))
    (realdata.RESULTS / "realdata_ablation.md").write_text(text + "\n")


if __name__ == "__main__":
    main()
