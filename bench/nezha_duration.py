"""How long an injected Nezha fault shows in its pod's metrics: the evidence for the
fault window of ``ftmoe dataset from-nezha`` (docs/datasets.md).

For every injection, each feature of the injected pod is z-scored against the pod's 20
minutes before the injection; the profile is the median, over injections of one class,
of the mean of the three largest |z| per minute, from 2 minutes before to 11 after.

    .venv/bin/python bench/nezha_duration.py [--data ../shared/data/nezha]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from ftmoe.simulator.convert_real import NEZHA_SYSTEMS, from_nezha

RESULTS = Path(__file__).parent / "results"
OFFSETS = list(range(-2, 12))


def profiles(data: Path) -> dict[str, dict[str, list[float]]]:
    out: dict[str, dict[str, list[float]]] = {}
    for system in NEZHA_SYSTEMS:
        ds = from_nezha(data, system, fault_minutes=1)
        x = ds.features
        per: dict[str, list[np.ndarray]] = {}
        for r in ds.fault_records():
            h, t0 = r["host"], r["onset"]
            if t0 < 20 or t0 + OFFSETS[-1] >= len(x):
                continue
            base = x[t0 - 20 : t0, h]
            z = np.abs((x[t0 + OFFSETS[0] : t0 + OFFSETS[-1] + 1, h] - base.mean(0)) / (base.std(0) + 1e-6))
            per.setdefault(ds.class_names[r["fault_type"]], []).append(np.sort(z, axis=1)[:, -3:].mean(axis=1))
        out[system] = {k: np.median(np.array(v), axis=0).round(2).tolist() for k, v in sorted(per.items())}
        out[system]["injections"] = {k: len(v) for k, v in per.items()}  # type: ignore[assignment]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data" / "nezha")
    args = parser.parse_args()
    prof = profiles(args.data)
    lines = ["| system | class | injections | " + " | ".join(f"{o:+d}" for o in OFFSETS) + " |", "|---|---|---|" + "---|" * len(OFFSETS)]
    for system, by_class in prof.items():
        counts = by_class["injections"]
        for cls, row in by_class.items():
            if cls == "injections":
                continue
            lines.append(f"| {system} | {cls} | {counts[cls]} | " + " | ".join(f"{v:.1f}" for v in row) + " |")  # type: ignore[index]
    lines.append("")
    lines.append(
        "Median over injections of the mean of the injected pod's three largest |z| (against its 20 minutes "
        "before the injection), per minute from the injection minute (+0). "
        "Command: `.venv/bin/python bench/nezha_duration.py`"
    )
    table = "\n".join(lines)
    print(table)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "nezha_duration.json").write_text(json.dumps({"offsets_minutes": OFFSETS, "profiles": prof}, indent=2))
    (RESULTS / "nezha_duration.md").write_text(table + "\n")


if __name__ == "__main__":
    main()
