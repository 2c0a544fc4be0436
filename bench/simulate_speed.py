"""Simulator speed: 10,000 intervals x 16 hosts (target < 60 s) and 1,000 hosts x 1,000
intervals (target < 5 min) on this machine. Median of --repeats runs.

    .venv/bin/python bench/simulate_speed.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import write  # noqa: E402

from ftmoe.simulator.config import SimConfig  # noqa: E402
from ftmoe.simulator.generate import simulate  # noqa: E402
from ftmoe.simulator.traces import load_pool  # noqa: E402

CASES = [(16, 10_000, 60.0), (1_000, 1_000, 300.0)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    t0 = time.perf_counter()
    pool = load_pool()
    load_s = time.perf_counter() - t0
    rows = []
    for hosts, intervals, target in CASES:
        runs = []
        for r in range(args.repeats):
            t0 = time.perf_counter()
            simulate(SimConfig(hosts=hosts, intervals=intervals, seed=r), pool)
            runs.append(time.perf_counter() - t0)
            print(f"hosts={hosts} intervals={intervals} run {r}: {runs[-1]:.1f}s", file=sys.stderr)
        med = statistics.median(runs)
        rows.append(
            {"hosts": hosts, "intervals": intervals, "runs_s": runs, "median_s": med, "target_s": target, "meets_target": med < target}
        )
    md = ["| hosts | intervals | median (s) | runs (s) | target (s) | met |", "|---|---|---|---|---|---|"]
    for r in rows:
        md.append(
            f"| {r['hosts']} | {r['intervals']} | {r['median_s']:.1f} | "
            f"{', '.join(f'{x:.1f}' for x in r['runs_s'])} | < {r['target_s']:.0f} | {'yes' if r['meets_target'] else 'NO'} |"
        )
    md.append(
        f"\nTrace pool load: {load_s:.1f}s (not included). Command: `.venv/bin/python bench/simulate_speed.py --repeats {args.repeats}`"
    )
    write("simulate_speed", {"trace_load_s": load_s, "repeats": args.repeats, "cases": rows}, "\n".join(md))


if __name__ == "__main__":
    main()
