"""What one interval's Prometheus read costs at a fleet's size: feature queries against
recorded features (`spec.prometheus.recordedFeatures`), on a Prometheus of its own.

    .venv/bin/python bench/prometheus_reads.py --nodes 5000 --repeats 5

No control plane: the simulator serves ``--nodes`` nodes' node_exporter series
(`ftmoe simulate serve --nodes`, 30 s steps, in shards of 500), a Prometheus scrapes them
every 15 s and evaluates the rules `ftmoe operator recording-rules` writes for a policy
with a 30 s interval. Then the operator's own reader (node_metrics.PrometheusSource) reads
a full window of the default model's features for every node, alternately by the feature
queries and from the recorded series. Per read: wall time, the reading process' CPU (JSON
decoding and filling the window) and Prometheus' CPU (from /proc). The rules' own cost is
Prometheus' last evaluation time of the group (once per interval, off the read's path).
Medians over ``--repeats`` reads each.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import yaml
from common import machine, proc_cpu, write

from ftmoe.contract.features import FEATURE_NAMES
from ftmoe.operator import own_metrics as M
from ftmoe.operator.api.policy_types import PolicySpec
from ftmoe.operator.node_metrics import PrometheusSource
from ftmoe.operator.recording_rules import DEFAULT_SERIES, rule_file

FTMOE = str(Path(sys.executable).parent / "ftmoe")
INTERVAL, RATE_WINDOW, WINDOW = 30.0, 60.0, 10
PROM_PORT, SIM_PORT = 39490, 39491


def get(url: str, **params: str) -> Any:
    with urllib.request.urlopen(f"{url}?{urllib.parse.urlencode(params)}", timeout=60) as resp:
        return json.load(resp)["data"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    prometheus = shutil.which("prometheus")
    if prometheus is None:
        sys.exit("error: no prometheus on PATH; `ftmoe cluster build` installs it")
    spec = PolicySpec.from_dict(
        {"interval": "30s", "prometheus": {"url": f"http://127.0.0.1:{PROM_PORT}", "rateWindow": "1m", "recordedFeatures": DEFAULT_SERIES}}
    )
    features = list(FEATURE_NAMES)
    nodes = [f"node-{i}" for i in range(args.nodes)]
    url = f"http://127.0.0.1:{PROM_PORT}"
    with tempfile.TemporaryDirectory(prefix="ftmoe-prom-reads-") as tmp:
        work = Path(tmp)
        (work / "targets").mkdir()
        (work / "rules.yml").write_text(yaml.safe_dump(rule_file(spec, features, "ftmoe-bench")))
        config = {
            "global": {"scrape_interval": "15s", "evaluation_interval": "30s"},
            "rule_files": [str(work / "rules.yml")],
            "scrape_configs": [
                {"job_name": "sim", "honor_labels": True, "file_sd_configs": [{"files": [str(work / "targets" / "*.json")]}]}
            ],
        }
        (work / "prometheus.yml").write_text(yaml.safe_dump(config))
        prom = subprocess.Popen(
            [prometheus, f"--config.file={work / 'prometheus.yml'}", f"--storage.tsdb.path={work / 'data'}"]
            + [f"--web.listen-address=127.0.0.1:{PROM_PORT}"],
            stdout=subprocess.DEVNULL,
            stderr=(work / "prometheus.log").open("w"),
        )
        sim = subprocess.Popen(
            [FTMOE, "simulate", "serve", "--nodes", str(args.nodes), "--targets-dir", str(work / "targets")]
            + ["--port", str(SIM_PORT), "--step-seconds", str(INTERVAL), "--fault-rate", "0"],
            stdout=subprocess.DEVNULL,
            stderr=(work / "sim.log").open("w"),
        )
        try:
            result = measure(url, spec, nodes, features, args.repeats, prom.pid)
        finally:
            for p in (sim, prom):
                p.terminate()
                p.wait(timeout=60)
    report(result, args)


def measure(url: str, spec: PolicySpec, nodes: list[str], features: list[str], repeats: int, prom_pid: int) -> dict[str, Any]:
    want = len(nodes) * len(features)
    print(f"waiting for {want} recorded series and a window of {WINDOW} steps of history ...", file=sys.stderr, flush=True)
    deadline = time.monotonic() + 900
    while True:
        try:
            got = get(f"{url}/api/v1/query", query=f"count({DEFAULT_SERIES})")["result"]
        except OSError:
            got = []
        if got and float(got[0]["value"][1]) >= want:
            break
        if time.monotonic() > deadline:
            sys.exit("error: the recorded series did not appear within 15 minutes")
        time.sleep(5)
    time.sleep(WINDOW * INTERVAL + INTERVAL)
    readers = {
        "queries": PrometheusSource(spec.prometheus.model_copy(update={"recorded_features": None, "timeout": 120.0})),
        "recorded": PrometheusSource(spec.prometheus.model_copy(update={"timeout": 120.0})),
    }
    runs: dict[str, list[dict[str, float]]] = {k: [] for k in readers}

    def read(kind: str, reader: PrometheusSource, now: float) -> dict[str, float]:
        wall, cpu, server = time.perf_counter(), time.process_time(), proc_cpu(prom_pid)
        window = reader.fetch(nodes, features, now, INTERVAL, WINDOW, RATE_WINDOW)
        if window.error or window.missing_features:
            sys.exit(f"error: {kind} read failed: {window.error or window.missing_features}")
        return {
            "wall_seconds": time.perf_counter() - wall,
            "reader_cpu_seconds": time.process_time() - cpu,
            "prometheus_cpu_seconds": proc_cpu(prom_pid) - server,
            "complete_nodes": int(window.complete.sum()),
        }

    incremental = M.PROMETHEUS_WINDOW_FETCHES.labels("incremental")
    for i in range(repeats):
        for kind, reader in readers.items():
            reader.windows.clear()  # a full window each time, as after a restart or off the grid
            now = time.time()
            row = read(kind, reader, now)
            # The next interval's read, one step later on the same grid: only its new steps, as a running operator reads.
            time.sleep(max(0.0, now + INTERVAL - time.time()))
            before = incremental._value.get()
            row |= {f"incremental_{k}": v for k, v in read(kind, reader, now + INTERVAL).items()}
            if incremental._value.get() != before + 1:
                sys.exit(f"error: the {kind} read one interval later was not incremental")
            runs[kind].append(row)
            print(json.dumps({"read": i, "kind": kind, **{k: round(v, 3) for k, v in row.items()}}), flush=True)
    groups = get(f"{url}/api/v1/rules")["groups"]
    evaluation = next(g["evaluationTime"] for g in groups if g["name"] == "ftmoe-bench")
    medians = {kind: {k: statistics.median(r[k] for r in rows) for k in rows[0]} for kind, rows in runs.items()}
    return {
        "nodes": len(nodes),
        "features": len(features),
        "window": WINDOW,
        "medians": medians,
        "runs": runs,
        "rule_evaluation_seconds": evaluation,
    }


def report(result: dict[str, Any], args: argparse.Namespace) -> None:
    md = [
        "| nodes | reads | wall (s) | reader CPU (s) | Prometheus CPU (s) | next interval: wall / reader CPU / Prometheus CPU (s) "
        "| complete nodes |",
        "|---|---|---|---|---|---|---|",
    ]
    for kind, m in result["medians"].items():
        md.append(
            f"| {result['nodes']} | {kind} | {m['wall_seconds']:.2f} | {m['reader_cpu_seconds']:.2f} | "
            f"{m['prometheus_cpu_seconds']:.2f} | {m['incremental_wall_seconds']:.2f} / {m['incremental_reader_cpu_seconds']:.2f} / "
            f"{m['incremental_prometheus_cpu_seconds']:.2f} | {m['complete_nodes']:.0f} |"
        )
    md.append(
        f"\nOne full window ({result['window']} steps of 30 s) of {result['features']} features for every node, read by "
        "node_metrics.PrometheusSource: by the feature queries (16, four in flight) or from the recorded series "
        "(spec.prometheus.recordedFeatures: 4 queries); then the next interval's read, 30 s later on the same grid, which "
        "asks only for the steps it does not hold (two: the new one and the last one again). Reader CPU: decoding the "
        "answers (operator/prometheus_range.py) and filling the window. The rules' own evaluation, once per interval: "
        f"{result['rule_evaluation_seconds']:.2f} s (Prometheus' last evaluation of the group). A Prometheus of its own "
        f"scraping the simulator every 15 s, no control plane; medians of {args.repeats} reads each, on {machine()['cpus']} "
        f"cores. Command: `.venv/bin/python bench/prometheus_reads.py --nodes {args.nodes} --repeats {args.repeats}`"
    )
    write("prometheus_reads", {**result, "command": " ".join(sys.argv)}, "\n".join(md))


if __name__ == "__main__":
    main()
