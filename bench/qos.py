"""Closed-loop quality of service (the paper's Figure 2): the simulator runs with
remediation driven by each predictor, by a reactive policy, and by none.

Every policy drains hosts (cordon + move their containers) within the same budget (25 %
of hosts) and uncordons after 3 calm intervals; only what triggers a drain differs.
Models are trained on the default dataset (`make data`) and act on fresh simulator runs
(other seeds), so nothing is scored on data it trained on.

    .venv/bin/python bench/qos.py [--seeds 3] [--intervals 2000] [--models ftmoe,mlp,gbt,promql]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import write  # noqa: E402

KEYS = [
    "containers_hit_by_faults",
    "sla_violations",
    "avg_response_time_ms",
    "downtime_pod_minutes",
    "energy_kwh",
    "avg_cpu_utilisation",
    "avg_ram_utilisation",
    "migrations",
]


def scorer_for(model: Any):  # type: ignore[no-untyped-def]
    import numpy as np

    def score(features: np.ndarray, migrations: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        pred = model.predict_arrays(features, migrations, np.array([features.shape[0] - 1]))
        return pred.alarms[0], pred.fault_probability[0]

    return score


def trained(kind: str, data: str, epochs: int, cache: Path) -> Any:
    from ftmoe.contract.dataset import load as load_ds
    from ftmoe.predictor.base import TrainOptions
    from ftmoe.predictor.data import temporal_split
    from ftmoe.predictor.registry import load, predictor_class

    if kind == "ftmoe" and Path("predictor/models/default/config.json").is_file():
        return load("predictor/models/default")
    folder = cache / kind
    if (folder / "config.json").is_file():
        return load(folder)
    ds = load_ds(data)
    model = predictor_class(kind)()
    options = TrainOptions(epochs=epochs)
    model.fit(ds, temporal_split(ds.shape[0], options.window), options, progress=False)
    model.save(folder)
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", default="data/sim-H16-T10000-s0.npz")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--intervals", type=int, default=2000)
    parser.add_argument("--models", default="ftmoe,gbt,mlp,promql")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--cache", default="data/qos-models")
    parser.add_argument("--out", default="qos")
    args = parser.parse_args()

    from ftmoe.simulator.config import SimConfig
    from ftmoe.simulator.engine import Simulator
    from ftmoe.simulator.policies import PredictivePolicy, ReactivePolicy
    from ftmoe.simulator.traces import load_pool

    pool = load_pool()
    models = {kind: trained(kind, args.data, args.epochs, Path(args.cache)) for kind in args.models.split(",") if kind}
    policies: dict[str, Any] = {"none": lambda: None, "reactive (after the fault)": ReactivePolicy}
    for kind, model in models.items():
        policies[kind] = lambda m=model: PredictivePolicy(scorer_for(m), m.window)
    rows: dict[str, list[dict[str, float]]] = {}
    for name, make in policies.items():
        for seed in range(args.seeds):
            sim = Simulator(SimConfig(hosts=16, intervals=args.intervals, seed=1000 + seed), pool)
            t0 = time.monotonic()
            for _ in sim.run(policy=make()):
                pass
            summary = sim.qos.summary()
            summary["seconds"] = time.monotonic() - t0
            rows.setdefault(name, []).append(summary)
            print(
                f"{name} seed {seed}: hit {summary['containers_hit_by_faults']}, downtime {summary['downtime_pod_minutes']:.0f} "
                f"pod-min ({summary['seconds']:.0f}s)",
                file=sys.stderr,
                flush=True,
            )
    table = []
    for name, runs in rows.items():
        table.append(
            {
                "policy": name,
                "runs": runs,
                **{
                    k: {"mean": statistics.fmean(r[k] for r in runs), "std": statistics.stdev(r[k] for r in runs) if len(runs) > 1 else 0.0}
                    for k in KEYS
                },
            }
        )
    base = table[0]
    md = [
        "| policy | containers hit | SLA violations | avg response (ms) | downtime (pod-min) | vs none | energy (kWh) | CPU util | "
        "RAM util | migrations |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in table:
        dt = row["downtime_pod_minutes"]["mean"] / base["downtime_pod_minutes"]["mean"] - 1
        md.append(
            f"| {row['policy']} | {row['containers_hit_by_faults']['mean']:.0f} | {row['sla_violations']['mean']:.0f} | "
            f"{row['avg_response_time_ms']['mean']:.0f} | {row['downtime_pod_minutes']['mean']:.0f} ± "
            f"{row['downtime_pod_minutes']['std']:.0f} | "
            f"{dt:+.1%} | {row['energy_kwh']['mean']:.1f} | {row['avg_cpu_utilisation']['mean']:.3f} | "
            f"{row['avg_ram_utilisation']['mean']:.3f} | {row['migrations']['mean']:.0f} |"
        )
    md.append(
        f"\nMeans over simulator seeds 1000..{999 + args.seeds}, 16 hosts x {args.intervals} intervals, drain budget 25 % of hosts. "
        f"Command: `.venv/bin/python bench/qos.py --seeds {args.seeds} --intervals {args.intervals} --models {args.models}`"
    )
    write(args.out, {"seeds": args.seeds, "intervals": args.intervals, "policies": table}, "\n".join(md))


if __name__ == "__main__":
    main()
