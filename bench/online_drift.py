"""Online tuning under drift (the FT-MoE paper's Figure 4).

The default model (trained on the default fault pattern) runs over a fresh simulation
that switches to the drifted fault pattern (`simulator.config.drifted_faults`) at
interval --drift-at. The stream is scored chunk by chunk, twice: with the model frozen,
and with an OnlineTuner that, after each chunk, fine-tunes the MoE on the intervals
seen so far (a sliding buffer) with the labels that have become known. Both curves are
saved as numbers and as a PNG.

    .venv/bin/python bench/online_drift.py [--intervals 4000] [--drift-at 1000] [--chunk 200]
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import RESULTS, write  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="predictor/models/default")
    parser.add_argument("--intervals", type=int, default=4000)
    parser.add_argument("--drift-at", type=int, default=1000)
    parser.add_argument("--chunk", type=int, default=200)
    parser.add_argument("--buffer", type=int, default=600, help="intervals kept for tuning")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    import numpy as np

    from ftmoe.predictor import metrics
    from ftmoe.predictor.online import OnlineTuner
    from ftmoe.predictor.registry import load
    from ftmoe.simulator.config import SimConfig, drifted_faults
    from ftmoe.simulator.generate import simulate
    from ftmoe.simulator.traces import load_pool

    ds = simulate(
        SimConfig(hosts=16, intervals=args.intervals, seed=args.seed, drift=drifted_faults(), drift_at=args.drift_at), load_pool()
    )
    frozen = load(args.model)
    tuned = copy.deepcopy(frozen)
    tuner = OnlineTuner(tuned, record_epochs=1)  # type: ignore[arg-type]
    W, lead = frozen.window, frozen.lead
    curve = []
    for start in range(W - 1, args.intervals - lead - args.chunk + 1, args.chunk):
        ends = np.arange(start, start + args.chunk)
        y = ds.labels[ends + lead]
        row = {"start": int(start), "after_drift": bool(start >= args.drift_at)}
        for name, model in (("frozen", frozen), ("tuned", tuned)):
            pred = model.predict(ds, ends)
            d = metrics.detection(y, pred.alarms)
            row[f"{name}_accuracy"], row[f"{name}_f1"] = d["accuracy"], d["f1"]
        row["experts"] = tuned.model.moe.n_experts  # type: ignore[attr-defined]
        curve.append(row)
        print(
            f"intervals {start}-{start + args.chunk}: frozen F1 {row['frozen_f1']:.3f}, tuned F1 {row['tuned_f1']:.3f}, "
            f"experts {row['experts']}",
            file=sys.stderr,
            flush=True,
        )
        # The chunk's labels are known now: tune on the recent buffer.
        lo = max(W - 1, start + args.chunk - args.buffer)
        buf = np.arange(lo, start + args.chunk - lead)
        report = tuner.tune(ds.features, ds.labels, ds.migrations, buf, epochs=args.epochs, seed=start)
        row["tune_removed"], row["tune_added"] = len(report.removed), report.added

    before = [r for r in curve if not r["after_drift"]]
    after = [r for r in curve if r["after_drift"]]
    tail = after[len(after) // 2 :]
    summary = {
        "pre_drift_f1_frozen": float(np.mean([r["frozen_f1"] for r in before])) if before else None,
        "post_drift_f1_frozen": float(np.mean([r["frozen_f1"] for r in tail])) if tail else None,
        "post_drift_f1_tuned": float(np.mean([r["tuned_f1"] for r in tail])) if tail else None,
        "post_drift_accuracy_frozen": float(np.mean([r["frozen_accuracy"] for r in tail])) if tail else None,
        "post_drift_accuracy_tuned": float(np.mean([r["tuned_accuracy"] for r in tail])) if tail else None,
        "experts_final": curve[-1]["experts"] if curve else None,
    }
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(7, 3.5))
        xs = [r["start"] for r in curve]
        ax.plot(xs, [r["frozen_f1"] for r in curve], label="without online tuning")
        ax.plot(xs, [r["tuned_f1"] for r in curve], label="with online tuning")
        ax.axvline(args.drift_at, color="grey", linestyle="--", label="drift")
        ax.set_xlabel("interval")
        ax.set_ylabel(f"detection F1 per {args.chunk} intervals")
        ax.legend()
        fig.tight_layout()
        png = RESULTS / "online_drift.png"
        RESULTS.mkdir(parents=True, exist_ok=True)
        fig.savefig(png, dpi=120)
        summary["plot"] = str(png.relative_to(RESULTS.parent.parent))
    except ImportError:
        summary["plot"] = None
    md = ["| chunk start | after drift | frozen F1 | tuned F1 | frozen acc | tuned acc | experts |", "|---|---|---|---|---|---|---|"]
    for r in curve:
        md.append(
            f"| {r['start']} | {'yes' if r['after_drift'] else 'no'} | {r['frozen_f1']:.3f} | {r['tuned_f1']:.3f} | "
            f"{r['frozen_accuracy']:.3f} | {r['tuned_accuracy']:.3f} | {r['experts']} |"
        )
    md.append(
        f"\nSecond half after the drift: F1 frozen {summary['post_drift_f1_frozen']:.3f}, tuned {summary['post_drift_f1_tuned']:.3f} "
        f"(before the drift, frozen {summary['pre_drift_f1_frozen']:.3f}). Plot: `bench/results/online_drift.png`. "
        f"Command: `.venv/bin/python bench/online_drift.py --intervals {args.intervals} --drift-at {args.drift_at} --chunk "
        f"{args.chunk}`"
    )
    write("online_drift", {"args": vars(args), "summary": summary, "curve": curve}, "\n".join(md))


if __name__ == "__main__":
    main()
