"""Operator benchmark on the local cluster: detect-to-cordon latency, and the operator's
CPU seconds per interval and memory at 16, 100 and 500 fake nodes.

    .venv/bin/python bench/operator.py [--nodes 16,100,500] [--intervals 12] [--faults 4]
    .venv/bin/python bench/operator.py --lead 8 [--lead-model data/models/horizon6]   (alarms before the fault, live)
    .venv/bin/python bench/operator.py --scale 100,1000,2000,5000 [--pods-per-node 10]   (bench/operator_scale.py)

For each size a cluster `ftmoe-bench` starts with that many kwok nodes, the simulator's
live mode serves their metrics (5 s intervals, no random faults), and `ftmoe operator run`
reconciles one policy over every node (interval 5 s). CPU is the operator process's
user+system time over `--intervals` intervals (from /proc), memory its resident set
(VmRSS at the end, VmHWM peak). At the smallest size, `--faults` memory leaks are then
injected one at a time on different nodes (precursor 4 intervals): the latency is counted
in intervals from the fault's onset (the simulator's ground truth) to the first
interval with risk at or above the cordon threshold, and to the cordon.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import RESULTS, get_json, proc_cpu, proc_mem, write  # noqa: E402

from ftmoe.cluster.local import ClusterSettings, LocalCluster  # noqa: E402
from ftmoe.cluster.operator_access import apply_operator_manifests  # noqa: E402
from ftmoe.cluster.waiting import wait_for  # noqa: E402

STEP = 5.0
SIM_PORT, METRICS_PORT, HEALTH_PORT = 39105, 38080, 38081
FTMOE = str(Path(sys.executable).parent / "ftmoe")


def policy(mode: str, prometheus: str) -> dict[str, Any]:
    return {
        "apiVersion": "ftmoe.io/v1alpha1",
        "kind": "FaultTolerancePolicy",
        "metadata": {"name": "bench"},
        "spec": {
            "mode": mode,
            "interval": "5s",
            "prometheus": {"url": prometheus, "rateWindow": "15s"},
            "hysteresis": {"riskFor": "5s", "healthyFor": "15s"},
            "maxUnavailable": 2,
            "stormBreaker": {"maxAtRisk": "50%"},
        },
    }


def interval_stats(policy_name: str = "bench") -> tuple[float, float]:
    try:
        text = urllib.request.urlopen(f"http://127.0.0.1:{METRICS_PORT}/metrics", timeout=10).read().decode()
    except OSError:
        return 0.0, 0.0  # not serving yet
    values = {}
    for line in text.splitlines():
        for key in ("ftmoe_interval_duration_seconds_sum", "ftmoe_interval_duration_seconds_count"):
            if line.startswith(key + "{") and f'policy="{policy_name}"' in line:
                values[key] = float(line.rsplit(" ", 1)[1])
    return values.get("ftmoe_interval_duration_seconds_sum", 0.0), values.get("ftmoe_interval_duration_seconds_count", 0.0)


def start(nodes: int, logs: Path) -> tuple[LocalCluster, subprocess.Popen[bytes], subprocess.Popen[bytes]]:
    """A fresh `ftmoe-bench` cluster of ``nodes`` kwok nodes, the simulator's live mode serving
    their metrics, and the operator; the caller stops them (``stop``)."""
    from ftmoe.cluster.local import port_busy

    cluster = LocalCluster("ftmoe-bench")
    cluster.down(quiet=True)
    wait_for(lambda: not port_busy(36443) and not port_busy(39090), 120, "the previous cluster's ports to close")
    sim = None
    try:
        cluster.up(ClusterSettings("ftmoe-bench", nodes, 36443, 39090))
        apply_operator_manifests(cluster.kubectl)
        sim = subprocess.Popen(
            [FTMOE, "simulate", "serve", "--cluster", "ftmoe-bench", "--port", str(SIM_PORT), "--fault-rate", "0"],
            stdout=(logs / f"sim-{nodes}.log").open("w"),
            stderr=subprocess.STDOUT,
        )
        query = urllib.parse.urlencode({"query": "count(node_memory_MemTotal_bytes)"})
        wait_for(
            lambda: (
                (r := get_json(f"{cluster.prometheus_url}/api/v1/query?{query}")["data"]["result"]) and float(r[0]["value"][1]) >= nodes
            ),
            180,
            f"{nodes} node series",
        )
        time.sleep(6 * STEP)
        op = subprocess.Popen(
            [
                FTMOE,
                "operator",
                "run",
                "--kubeconfig",
                str(cluster.kubeconfig),
                "--metrics-port",
                str(METRICS_PORT),
                "--health-port",
                str(HEALTH_PORT),
            ],
            stdout=(logs / f"operator-{nodes}.log").open("w"),
            stderr=subprocess.STDOUT,
        )
    except BaseException:
        stop(cluster, sim)
        raise
    return cluster, sim, op


def stop(cluster: LocalCluster, *procs: subprocess.Popen[bytes] | None) -> None:
    for p in procs:
        if p is not None:
            p.terminate()
            p.wait(timeout=60)
    cluster.down(quiet=True)


def run_size(nodes: int, intervals: int, faults: int, logs: Path) -> dict[str, Any]:
    cluster, sim, op = start(nodes, logs)
    try:
        cluster.kubectl("apply", "-f", "-", input=json.dumps(policy("Observe", cluster.prometheus_url)))
        wait_for(lambda: interval_stats()[1] >= 3, 180, "three intervals")  # warm: model loaded, caches filled
        cpu0, (s0, n0), t0 = proc_cpu(op.pid), interval_stats(), time.monotonic()
        wait_for(lambda: interval_stats()[1] >= n0 + intervals, intervals * STEP * 6, f"{intervals} more intervals")
        cpu1, (s1, n1), t1 = proc_cpu(op.pid), interval_stats(), time.monotonic()
        rss, peak = proc_mem(op.pid)
        result: dict[str, Any] = {
            "nodes": nodes,
            "intervals": n1 - n0,
            "cpu_seconds_per_interval": (cpu1 - cpu0) / (n1 - n0),
            "cpu_share_of_one_core": (cpu1 - cpu0) / (t1 - t0),
            "mean_interval_wall_seconds": (s1 - s0) / (n1 - n0),
            "rss_mib": rss,
            "peak_rss_mib": peak,
        }
        print(json.dumps(result), flush=True)
        if faults:
            cluster.kubectl("apply", "-f", "-", input=json.dumps(policy("Cordon", cluster.prometheus_url)))
            result["latency"] = [measure_latency(cluster, f"node-{1 + 3 * i}") for i in range(faults)]
            print(json.dumps(result["latency"]), flush=True)
        return result
    finally:
        stop(cluster, op, sim)


def inject(node: str, **params: int) -> None:
    """A memory leak on ``node`` through the simulator's control endpoint (precursor and
    duration in intervals; a precursor left out is drawn from the cause's range)."""
    query = urllib.parse.urlencode({"fault": "memory-leak", "node": node, **params})
    urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{SIM_PORT}/inject?{query}", method="POST"), timeout=10)


def saved_results() -> dict[str, Any]:
    """bench/results/operator.json as last written, less what ``write`` stamps anew."""
    path = RESULTS / "operator.json"
    previous = json.loads(path.read_text()) if path.is_file() else {}
    previous.pop("benchmark", None)
    previous.pop("machine", None)
    return previous


def measure_latency(cluster: LocalCluster, node: str) -> dict[str, Any]:
    """Intervals from the fault's onset to the first alarm and to the cordon (negative: before onset)."""
    inject(node, precursor=4, duration=10)
    onset = alarm = cordon = None
    deadline = time.monotonic() + 40 * STEP
    while time.monotonic() < deadline and cordon is None:
        now = time.monotonic()
        if onset is None and get_json(f"http://127.0.0.1:{SIM_PORT}/state")["nodes"][node]["phase"] == "fault":
            onset = now
        n = json.loads(cluster.kubectl("get", "node", node, "-o", "json").stdout)
        risk = float((n["metadata"].get("annotations") or {}).get("ftmoe.io/risk", 0))
        if alarm is None and risk >= 0.6:
            alarm = now
        if n["spec"].get("unschedulable"):
            cordon = now
        time.sleep(0.5)
    wait_for(
        lambda: not json.loads(cluster.kubectl("get", "node", node, "-o", "json").stdout)["spec"].get("unschedulable"),
        60 * STEP,
        f"{node} uncordoned",
    )

    def rel(t: float | None) -> float | None:
        return None if t is None or onset is None else round((t - onset) / STEP, 2)

    return {"node": node, "alarm_intervals_after_onset": rel(alarm), "cordon_intervals_after_onset": rel(cordon)}


def run_lead(faults: int, model: Path, logs: Path, nodes: int = 16) -> dict[str, Any]:
    """Alarms before the fault, live: ``faults`` memory leaks injected one every 4 intervals on
    distinct nodes (precursor drawn from the cause's own range, 5-15 intervals), an Evict policy
    serving ``model``; per fault the first alarm, the cordon and the finished drain, in
    intervals from the onset (the simulator's ground truth; negative = before it)."""
    cluster, sim, op = start(nodes, logs)
    try:
        spec = policy("Evict", cluster.prometheus_url)
        spec["spec"].update(
            {"model": {"source": "Path", "path": str(model.resolve())}, "maxUnavailable": faults, "stormBreaker": {"maxAtRisk": "75%"}}
        )
        cluster.kubectl("apply", "-f", "-", input=json.dumps(spec))
        wait_for(lambda: interval_stats()[1] >= 3, 180, "three intervals")
        targets = [f"node-{1 + 2 * i}" for i in range(faults)]
        seen: dict[str, dict[str, float | None]] = {
            n: {"injected": None, "onset": None, "alarm": None, "cordon": None, "drained": None} for n in targets
        }
        next_injection, deadline = time.monotonic(), time.monotonic() + (4 * faults + 40) * STEP
        while time.monotonic() < deadline and not all(  # every drain done, or 20 intervals past its onset
            v["drained"] is not None or v["onset"] is not None and time.monotonic() - v["onset"] > 20 * STEP for v in seen.values()
        ):
            now = time.monotonic()
            pending = [n for n in targets if seen[n]["injected"] is None]
            if pending and now >= next_injection:
                inject(pending[0], duration=20)
                seen[pending[0]]["injected"], next_injection = now, now + 4 * STEP
            phases = get_json(f"http://127.0.0.1:{SIM_PORT}/state")["nodes"]
            items = {n["metadata"]["name"]: n for n in json.loads(cluster.kubectl("get", "nodes", "-o", "json").stdout)["items"]}
            for name, v in seen.items():
                if v["injected"] is None:
                    continue
                node, annotations = items[name], items[name]["metadata"].get("annotations") or {}
                if v["onset"] is None and phases[name]["phase"] == "fault":
                    v["onset"] = now
                if v["alarm"] is None and float(annotations.get("ftmoe.io/risk", 0)) >= 0.6:
                    v["alarm"] = now
                if v["cordon"] is None and node["spec"].get("unschedulable"):
                    v["cordon"] = now
                if v["drained"] is None and annotations.get("ftmoe.io/drain") == "done":
                    v["drained"] = now
            time.sleep(0.5)
    finally:
        stop(cluster, op, sim)

    def rel(v: dict[str, float | None], key: str) -> float | None:
        t, onset = v[key], v["onset"]
        return None if t is None or onset is None else round((t - onset) / STEP, 2)

    per_fault: list[dict[str, Any]] = [
        {"node": n, **{f"{k}_intervals": rel(v, k) for k in ("alarm", "cordon", "drained")}}
        for n, v in seen.items()
        if v["onset"] is not None
    ]
    alarms = [f["alarm_intervals"] for f in per_fault if f["alarm_intervals"] is not None]

    def before(key: str) -> float:
        return sum(1 for f in per_fault if f[key] is not None and f[key] < 0) / max(len(per_fault), 1)

    return {
        "faults": len(per_fault),
        "median_first_alarm_intervals": statistics.median(alarms) if alarms else None,
        "alarmed": len(alarms),
        "cordoned_before_onset_share": before("cordon_intervals"),
        "drained_before_onset_share": before("drained_intervals"),
        "per_fault": per_fault,
        "model": str(model),
        "nodes": nodes,
    }


def lead_main(args: argparse.Namespace, logs: Path) -> None:
    model = Path(args.lead_model)
    if not (model / "config.json").is_file():
        sys.exit(
            f"{model}: no model there. Train the horizon model first: .venv/bin/ftmoe train --data data/sim-H16-T10000-s0.npz "
            f"--out {model} --horizon 6 (make the data with: .venv/bin/ftmoe simulate --hosts 16 --intervals 10000 --seed 0 "
            "--out data/sim-H16-T10000-s0.npz)"
        )
    lead = run_lead(args.lead, model, logs)
    lead["command"] = f".venv/bin/python bench/operator.py --lead {args.lead} --lead-model {args.lead_model}"
    previous = saved_results()
    previous["lead"] = lead
    md_old = (RESULTS / "operator.md").read_text() if (RESULTS / "operator.md").is_file() else ""
    head, _, scale = md_old.partition("\n**At scale**")
    head = head.split("\n**Alarms before the fault**")[0].rstrip()
    fmt = lambda x: "-" if x is None else f"{x:+.1f}"  # noqa: E731
    section = [
        "",
        "**Alarms before the fault** (`bench/operator.py --lead`)",
        "",
        f"{lead['faults']} memory leaks injected on a {lead['nodes']}-node local cluster, precursor 5-15 intervals drawn by the "
        f"simulator, one Evict policy serving the horizon model ({lead['model']}), interval 5 s, riskFor 5s. Intervals from the "
        "fault's onset (negative = before it):",
        "",
        "| node | first alarm | cordon | drain finished |",
        "|---|---|---|---|",
        *[
            f"| {f['node']} | {fmt(f['alarm_intervals'])} | {fmt(f['cordon_intervals'])} | {fmt(f['drained_intervals'])} |"
            for f in lead["per_fault"]
        ],
        "",
        f"Median first alarm {fmt(lead['median_first_alarm_intervals'])} intervals ({lead['alarmed']} of {lead['faults']} alarmed); "
        f"cordoned before onset {lead['cordoned_before_onset_share']:.0%}, drained before onset {lead['drained_before_onset_share']:.0%} "
        f"(targets: median <= -2, >= 70 %, >= 50 %). Command: `{lead['command']}`",
    ]
    md = head + "\n" + "\n".join(section) + ("\n\n**At scale**" + scale if scale else "")
    write("operator", previous, md)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", default="16,100,500")
    parser.add_argument("--intervals", type=int, default=12)
    parser.add_argument("--faults", type=int, default=4)
    parser.add_argument("--scale", help="node counts for the scale run (30 s intervals, Observe and Evict), e.g. 100,1000,2000,5000")
    parser.add_argument("--pods-per-node", type=int, default=10, help="bound pods per node in the scale run")
    parser.add_argument("--scale-intervals", type=int, default=5, help="measured intervals per (nodes, mode) in the scale run")
    parser.add_argument(
        "--recorded",
        action="store_true",
        help="scale run: load `ftmoe operator recording-rules` into Prometheus and read spec.prometheus.recordedFeatures",
    )
    parser.add_argument("--lead", type=int, default=0, help="measure alarms before the fault live: this many injected faults")
    parser.add_argument("--lead-model", default="data/models/horizon6", help="the model folder the --lead run serves")
    args = parser.parse_args()
    logs = Path("/tmp/ftmoe-bench-operator")
    logs.mkdir(exist_ok=True)
    if args.scale:
        return scale_main(args, logs)
    if args.lead:
        return lead_main(args, logs)
    sizes = [int(n) for n in args.nodes.split(",")]
    # Each size's result is kept as it finishes, so a run that stops resumes where it was.
    partial = RESULTS / "operator.partial.json"
    done = {int(k): v for k, v in json.loads(partial.read_text()).items()} if partial.is_file() else {}
    for n in sizes:
        if n not in done:
            done[n] = run_size(n, args.intervals, args.faults if n == min(sizes) else 0, logs)
            partial.write_text(json.dumps(done, indent=2))
    results = [done[n] for n in sizes]
    latency = next((r["latency"] for r in results if "latency" in r), [])
    alarm = [x["alarm_intervals_after_onset"] for x in latency if x["alarm_intervals_after_onset"] is not None]
    cordon = [x["cordon_intervals_after_onset"] for x in latency if x["cordon_intervals_after_onset"] is not None]
    md = [
        "| nodes | CPU s / interval | share of one core | interval wall time (s) | RSS (MiB) | peak RSS (MiB) |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        md.append(
            f"| {r['nodes']} | {r['cpu_seconds_per_interval']:.3f} | {r['cpu_share_of_one_core']:.1%} | "
            f"{r['mean_interval_wall_seconds']:.3f} | {r['rss_mib']:.0f} | {r['peak_rss_mib']:.0f} |"
        )
    if latency:
        md.append(
            f"\nDetect-to-cordon on the local cluster ({len(latency)} injected memory leaks, 5 s intervals, riskFor 5s): "
            f"first alarm median {statistics.median(alarm):+.1f} intervals from the fault's onset, cordon median "
            f"{statistics.median(cordon):+.1f} intervals (negative = before onset). Per fault: "
            + ", ".join(f"{x['node']} {x['alarm_intervals_after_onset']}/{x['cordon_intervals_after_onset']}" for x in latency)
        )
    md.append(
        f"\nOne policy over every node, interval 5 s, Observe mode for the CPU figures. "
        f"Command: `.venv/bin/python bench/operator.py --nodes {args.nodes} --intervals {args.intervals} --faults {args.faults}`"
    )
    write(
        "operator",
        {
            "step_seconds": STEP,
            "sizes": results,
            "latency": latency,
            "median_alarm_intervals_after_onset": statistics.median(alarm) if alarm else None,
            "median_cordon_intervals_after_onset": statistics.median(cordon) if cordon else None,
        },
        "\n".join(md),
    )


def reads(entry: dict[str, Any]) -> str:
    """The bench's own reads of the operator's /metrics in an interval, and their CPU (an upper
    bound, included in the operator CPU column); '-' for rows measured before they were kept."""
    if "bench_reads" not in entry:
        return "-"
    return f"{entry['bench_reads']:.1f} ({entry['bench_read_cpu_seconds']:.2f})"


def action_writes(entry: dict[str, Any]) -> str:
    """' (n evictions, m events)': what an interval's writes hold besides shown state; nothing
    for rows measured before they were counted."""
    if "api_evictions" not in entry:
        return ""
    events = f", {entry['api_events']:.0f} events" if "api_events" in entry else ""
    return f" ({entry['api_evictions']:.0f} evictions{events})"


def scale_main(args: argparse.Namespace, logs: Path) -> None:
    from operator_scale import PHASES, run_scale

    sizes = [int(n) for n in args.scale.split(",")]
    reading = "recorded" if args.recorded else "queries"
    partial = RESULTS / f"operator_scale-{reading}.partial.json"
    done = {int(k): v for k, v in json.loads(partial.read_text()).items()} if partial.is_file() else {}
    ports = {"api": 36443, "prom": 39090, "sim": SIM_PORT, "metrics": METRICS_PORT, "health": HEALTH_PORT}
    code = "commit " + subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    for n in sizes:
        if n not in done:
            done[n] = run_scale(n, args.pods_per_node, args.scale_intervals, 3, logs, ports, FTMOE, args.recorded)
            for e in done[n]["entries"]:
                e["code"] = code
            partial.write_text(json.dumps(done, indent=2))
    previous = saved_results()
    # (size, reads) pairs not run this time keep their earlier rows, each saying which code it measured
    kept = [e for e in previous.get("scale", []) if not (e["nodes"] in done and e.get("prometheus_reads", "queries") == reading)]
    scale = sorted(
        kept + [e for n in done for e in done[n]["entries"]],
        key=lambda e: (e["nodes"], e.get("prometheus_reads", "queries") != "queries", e["mode"] != "Observe"),
    )
    previous["scale"] = scale
    previous["scale_command"] = f".venv/bin/python bench/operator.py --scale {args.scale} --pods-per-node {args.pods_per_node}" + (
        " --recorded" if args.recorded else ""
    )
    old_md = (RESULTS / "operator.md").read_text().split("\n**At scale**")[0].rstrip() if (RESULTS / "operator.md").is_file() else ""
    md = [
        old_md,
        "",
        "**At scale** (`bench/operator.py --scale`)",
        "",
        "| nodes | pods | mode | Prometheus reads | interval wall (s) | operator CPU s / interval | RSS (MiB) | API requests / interval | "
        "API writes / interval (of them evictions, events) | changed nodes | Prometheus s / interval | detect-to-cordon (s) | "
        "control plane (cores, idle) | bench reads of /metrics / interval (CPU s) | code |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for e in scale:
        lat = e.get("median_detect_to_cordon_seconds")
        md.append(
            f"| {e['nodes']} | {e['pods']} | {e['mode']} | {e.get('prometheus_reads', 'queries')} | "
            f"{e['wall_seconds']:.2f} | {e['cpu_seconds']:.2f} | {e['rss_mib']:.0f} | "
            f"{e['api_requests']:.0f} | {e['api_writes']:.0f}{action_writes(e)} | {e['changed_nodes']:.0f} | "
            f"{e['prometheus_query_seconds']:.2f} | "
            f"{'-' if lat is None else f'{lat:+.0f}'} | {sum(e['control_plane_cores'].values()):.2f} | {reads(e)} | {e.get('code', '-')} |"
        )
    phased = [e for e in scale if "phase_metrics_seconds" in e]
    if phased:
        md += [
            "",
            "Where an interval's wall time goes (`ftmoe_interval_phase_seconds`, medians, seconds), and the garbage "
            "collector's CPU-seconds an interval in all threads, full collections in brackets (`ftmoe_gc_seconds_total`; "
            "rows before it was measured: -):",
            "",
            "| nodes | mode | Prometheus reads | " + " | ".join(PHASES) + " | GC CPU (full) | code |",
            "|---|---|---|" + "---|" * (len(PHASES) + 2),
        ]
        for e in phased:
            cells = " | ".join(f"{e[f'phase_{ph}_seconds']:.3f}" for ph in PHASES)
            gc = f"{e['gc_seconds']:.2f} ({e['gc_full_seconds']:.2f})" if "gc_seconds" in e else "-"
            md.append(f"| {e['nodes']} | {e['mode']} | {e.get('prometheus_reads', 'queries')} | {cells} | {gc} | {e.get('code', '-')} |")
    md.append(
        "\nControl plane: the idle CPU of kube-apiserver, etcd, kwok, controller-manager, scheduler, Prometheus and the "
        "simulator before the operator starts: from 1,000 nodes it fills the two cores, so the operator's wall time there is "
        "mostly waiting for CPU. Medians over the measured intervals; one policy over every node, interval 30 s; Evict mode "
        "with 3 memory leaks injected at its start (detect-to-cordon: the node's cordoned-at minus the fault's onset, negative "
        "= before it). The operator CPU includes rendering /metrics for the bench's reads (their count and CPU in the last "
        "column; Prometheus scraping every 30 s would read it about once an interval). "
        "Prometheus reads: one query per feature (queries), or four queries of the series recording rules keep "
        "(recorded: `--recorded`, spec.prometheus.recordedFeatures). "
        'Evictions (`ftmoe_interval_api_evictions`) and events (`ftmoe_api_requests_total{verb="create",resource="events"}`) '
        "are counted among the writes: a drain writes once per pod, an action an event on the node and one on the policy; rows "
        "measured before they were counted show none in brackets. "
        "Rows of sizes not in the last command keep the code they measured (the code column). "
        f"Last command: `{previous['scale_command']}`"
    )
    write("operator", previous, "\n".join(md))
    # The run is complete: the next one measures the code as it is then, not this run's rows again.
    partial.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
