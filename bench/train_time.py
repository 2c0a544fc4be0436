"""Training time of the default model on the default dataset (target <= 15 minutes here).

Runs exactly what `make model` runs (30 epochs at most, early stopping on validation F1)
into a temporary folder, and records wall time, epochs run and the test F1.

    .venv/bin/python bench/train_time.py [--data data/sim-H16-T10000-s0.npz]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import write  # noqa: E402

TARGET_S = 15 * 60


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", default="data/sim-H16-T10000-s0.npz")
    parser.add_argument("--epochs", type=int, default=30)
    args = parser.parse_args()
    ftmoe = Path(sys.executable).parent / "ftmoe"
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.monotonic()
        subprocess.run([str(ftmoe), "train", "--data", args.data, "--out", tmp, "--epochs", str(args.epochs), "--quiet"], check=True)
        wall = time.monotonic() - t0
        metrics = json.loads((Path(tmp) / "metrics.json").read_text())
    epochs = len(metrics["history"]["history"])
    md = (
        "| dataset | epochs run | wall time (s) | per epoch (s) | test F1 | target | met |\n|---|---|---|---|---|---|---|\n"
        f"| {args.data} | {epochs} | {wall:.0f} | {wall / epochs:.1f} | {metrics['test']['f1']:.4f} | <= {TARGET_S} s | "
        f"{'yes' if wall <= TARGET_S else 'NO'} |\n\nWall time includes loading, training, early stopping and the test evaluation. "
        f"Command: `.venv/bin/python bench/train_time.py`"
    )
    write(
        "train_time",
        {
            "dataset": args.data,
            "wall_seconds": wall,
            "epochs_run": epochs,
            "train_seconds": metrics["train_seconds"],
            "test_f1": metrics["test"]["f1"],
            "target_seconds": TARGET_S,
            "meets_target": wall <= TARGET_S,
        },
        md,
    )


if __name__ == "__main__":
    main()
