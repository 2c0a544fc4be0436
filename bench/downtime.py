"""Does acting on predictions pay? Downtime under each remediation policy, in two regimes:

- ``--regime kubernetes`` (bench/downtime_kubernetes.py): a GPU fleet whose faults have the
  consequences Kubernetes gives them, with reactive peers and the operator's decision path;
- ``--regime paper``: the second seed's claim in the paper simulator's closed loop, below.

    .venv/bin/python bench/downtime.py --regime both [--seeds 5]

Results: bench/results/downtime.{json,md}, one row per (regime, predictable share, policy);
a run of one regime keeps the other's rows from the last run.

The paper regime: downtime (pod-minutes unavailable because of faults and moves) under

- no fault tolerance;
- a reactive policy (drain after the fault shows, like draino);
- the seed's MLP with its threshold, draining what it flags;
- FT-MoE with the operator's cost model (operator/costs.py: drain, cordon or nothing,
  whichever has the lowest L = ResourceCost + FaultImpact);
- FT-MoE draining at its threshold (no cost model), for reference;
- an oracle that drains each host in the two intervals before its fault (ground truth).

    .venv/bin/python bench/downtime.py --regime paper [--seeds 5] [--intervals 2000] [--validation-seeds 3]

Models are the default FT-MoE (predictor/models/default) and the seed MLP trained on the
default dataset; they act on fresh simulator runs (seeds 2000+). Same budget for every
policy (25 % of hosts), uncordon after 3 calm intervals.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import RESULTS, write  # noqa: E402
from qos import scorer_for, trained  # noqa: E402

RESULT = RESULTS / "downtime.json"


def cost_chooser(interval_seconds: float, fault_intervals: float, migration_share: float, capacity_seconds: float):  # type: ignore[no-untyped-def]
    from ftmoe.operator.costs import CostWeights, NodeLoad, choose

    weights = CostWeights(
        restart_seconds=migration_share * interval_seconds,
        fault_seconds=fault_intervals * interval_seconds,
        capacity_seconds=capacity_seconds,
    )

    def pick(p: float, load: dict[str, float]) -> str:
        chosen, _ = choose(
            p,
            NodeLoad(
                pods=int(load["pods"]),
                cpu_requests=load["cpu_requests"],
                cores=load["cores"],
                free_cores_elsewhere=load["free_cores_elsewhere"],
            ),
            weights,
            ("annotate", "cordon", "evict"),
        )
        return chosen.action

    return pick


def main() -> None:
    import downtime_kubernetes

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--regime",
        choices=["kubernetes", "paper", "both", "report"],
        default="both",
        help="report: rewrite the tables from the saved results",
    )
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--data", default="data/sim-H16-T10000-s0.npz", help="paper regime: the models' training data")
    parser.add_argument("--intervals", type=int, default=2000, help="paper regime: intervals per run")
    parser.add_argument("--qos-cache", default="data/qos-models", help="paper regime: where its models are cached")
    parser.add_argument(
        "--validation-seeds", type=int, default=3, help="paper regime: simulator runs (seeds 3000+) the capacity cost is fitted on"
    )
    downtime_kubernetes.add_arguments(parser)
    args = parser.parse_args()
    previous = json.loads(RESULT.read_text()) if RESULT.exists() else {}
    old_rows = [r for r in previous.get("rows", []) if "regime" in r]
    sections: dict[str, Any] = {k: previous[k] for k in ("kubernetes", "paper") if k in previous}
    md: dict[str, str] = {k: previous.get("markdown", {}).get(k, "") for k in ("kubernetes", "paper")}
    rows = {k: [r for r in old_rows if r["regime"] == k] for k in ("kubernetes", "paper")}
    argv = " ".join(sys.argv[1:])
    if args.regime in ("kubernetes", "both"):
        result = downtime_kubernetes.run(args)
        rows["kubernetes"], sections["kubernetes"] = result["rows"], result["config"]
        md["kubernetes"] = downtime_kubernetes.markdown(result, f".venv/bin/python bench/downtime.py {argv}")
    if args.regime in ("paper", "both"):
        rows["paper"], sections["paper"], md["paper"] = paper(args)
    text = "## kubernetes regime\n\n" + md["kubernetes"] + "\n\n## paper regime\n\n" + md["paper"]
    write("downtime", {"rows": rows["kubernetes"] + rows["paper"], **sections, "markdown": md}, text)


def paper(args: argparse.Namespace) -> tuple[list[dict[str, Any]], dict[str, Any], str]:
    """The paper regime's closed loop; rows in the kubernetes rows' units (per 100 node-days)."""

    from ftmoe.simulator.config import SimConfig
    from ftmoe.simulator.engine import MIGRATION_DOWNTIME, F, Simulator
    from ftmoe.simulator.faults import PRECURSOR
    from ftmoe.simulator.policies import CostPolicy, DrainPolicy, PredictivePolicy, ReactivePolicy
    from ftmoe.simulator.traces import load_pool

    pool = load_pool()
    ftmoe, mlp = trained("ftmoe", args.data, 15, Path(args.qos_cache)), trained("mlp", args.data, 15, Path(args.qos_cache))
    config = SimConfig(hosts=16, intervals=args.intervals)
    mean_fault = float(np.mean(config.faults.duration))

    def oracle(sim: Any) -> Any:
        drain = DrainPolicy()
        return lambda obs: drain.decide(
            obs, (sim.faults.phase == PRECURSOR) & (sim.faults.until - sim.t <= 2), (sim.faults.until - sim.t).astype(float) * -1.0
        )

    def cost_policy(capacity_seconds: float) -> Any:
        return lambda sim: CostPolicy(
            scorer_for(ftmoe),
            ftmoe.window,
            cost_chooser(config.interval_seconds, mean_fault, MIGRATION_DOWNTIME, capacity_seconds),
            sim.cores.astype(float),
            F["cpu_utilisation"],
        )

    # The one weight the simulator cannot tell us: what a core taken out of service costs
    # (moving its load concentrates it elsewhere). Fitted on validation runs (seeds 3000+),
    # like a threshold, never on the seeds reported below. Several: on one run of 1,000
    # intervals the grid's order is noise (3000 s beat never acting by 18 % on seed 3000 and
    # lost to it by 5 % on seed 3001). At the grid's top (20000 s) it acted on nothing on seed 3000.
    grid = [0.0, 1000.0, 3000.0, 10000.0, 20000.0]
    validation: dict[float, float] = {}
    for x in grid:
        runs = []
        for seed in range(3000, 3000 + args.validation_seeds):
            sim = Simulator(config.with_(seed=seed, intervals=min(args.intervals, 1000)), pool)
            for _ in sim.run(policy=cost_policy(x)(sim)):
                pass
            runs.append(sim.qos.summary()["downtime_pod_minutes"])
        validation[x] = statistics.fmean(runs)
        print(
            f"validation: capacityCostPerCore {x:.0f}s -> downtime {validation[x]:.0f} pod-min (mean of {len(runs)})",
            file=sys.stderr,
            flush=True,
        )
    capacity = min(grid, key=lambda x: validation[x])

    policies: dict[str, Any] = {
        "none": lambda sim: None,
        "reactive (after the fault)": lambda sim: ReactivePolicy(),
        "seed MLP + threshold": lambda sim: PredictivePolicy(scorer_for(mlp), mlp.window),
        "FT-MoE + cost model": cost_policy(capacity),
        "FT-MoE + threshold": lambda sim: PredictivePolicy(scorer_for(ftmoe), ftmoe.window),
        "oracle drain (2 intervals ahead)": oracle,
    }
    rows: dict[str, list[float]] = {}
    for name, make in policies.items():
        for seed in range(args.seeds):
            sim = Simulator(config.with_(seed=2000 + seed), pool)
            t0 = time.monotonic()
            for _ in sim.run(policy=make(sim)):
                pass
            rows.setdefault(name, []).append(sim.qos.summary()["downtime_pod_minutes"])
            print(f"{name} seed {seed}: downtime {rows[name][-1]:.0f} pod-min ({time.monotonic() - t0:.0f}s)", file=sys.stderr, flush=True)
    base = statistics.fmean(rows["none"])
    node_days = config.hosts * args.intervals * config.interval_seconds / 86400
    per = 100.0 / node_days / 60  # pod-minutes per run -> pod-hours per 100 node-days

    def stat(v: list[float]) -> dict[str, float]:
        return {"mean": statistics.fmean(v) * per, "std": (statistics.stdev(v) if len(v) > 1 else 0.0) * per}

    table: list[dict[str, Any]] = [
        {
            "regime": "paper",
            "predictable_share": 1 - float(np.mean(config.faults.sudden_share)),
            "policy": k,
            "seeds": len(v),
            "pod_downtime": stat(v),
            "service_downtime": None,
            "lost_gpu_hours": None,
            "false_drains_per_100_node_days": None,
            "vs_none": statistics.fmean(v) / base - 1,
            "downtime_pod_minutes_per_run": v,
        }
        for k, v in rows.items()
    ]
    note = (
        f"Cost model: restart = migration downtime, fault = mean fault duration, capacityCostPerCore {capacity:.0f} s fitted on "
        f"validation seeds 3000..{2999 + args.validation_seeds} (grid {grid}). Means over simulator seeds "
        f"2000..{1999 + args.seeds}, 16 hosts x {args.intervals} intervals. Command: `.venv/bin/python bench/downtime.py "
        f"--regime paper --seeds {args.seeds} --intervals {args.intervals} --validation-seeds {args.validation_seeds}`"
    )
    md = paper_markdown(table, note)
    section = {
        "seeds": args.seeds,
        "intervals": args.intervals,
        "validation_seeds": args.validation_seeds,
        "capacity_seconds": capacity,
        "validation": validation,
    }
    return table, section, md


def paper_markdown(table: list[dict[str, Any]], note: str) -> str:
    md = ["| policy | pod downtime (h per 100 node-days) | vs none |", "|---|---|---|"]
    md += [f"| {r['policy']} | {r['pod_downtime']['mean']:.1f} ± {r['pod_downtime']['std']:.1f} | {r['vs_none']:+.1%} |" for r in table]
    ft = next(r for r in table if r["policy"] == "FT-MoE + cost model")
    md.append(
        f"\nTarget: never worse than none (<= +1 %): FT-MoE + cost model {ft['vs_none']:+.1%} "
        f"({'met' if ft['vs_none'] <= 0.01 else 'not met'}). {note}"
    )
    return "\n".join(md)


if __name__ == "__main__":
    main()
