"""The operator at cluster scale: `bench/operator.py --scale 100,1000,2000,5000`.

For each size a local cluster `ftmoe-bench` starts with that many kwok nodes and
``--pods-per-node`` bound pods, the simulator's live mode serves every node's metrics (one
step per interval, no random faults) and `ftmoe operator run` reconciles one policy over
every node, interval 30 s: first in Observe mode, then in Evict mode with ``--faults``
memory leaks injected at once. Per interval (from the operator's own /metrics and /proc):
wall time, operator CPU-seconds, RSS, API requests and writes, nodes whose shown state
changed, Prometheus query time, the interval's wall time by phase
(``ftmoe_interval_phase_seconds``) and the garbage collector's CPU
(``ftmoe_gc_seconds_total``). Medians per (nodes, mode). Detect-to-cordon in Evict mode:
seconds from each fault's onset (the simulator's ground-truth series in Prometheus) to the
node's ``ftmoe.io/cordoned-at``. The control plane's own CPU (API server, etcd, kwok,
controller-manager, scheduler, Prometheus, simulator) is sampled while the operator idles.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from common import proc_cpu, proc_mem

INTERVAL = 30.0
# An interval at scale may run past its length, and that is what the bench is for, so it waits
# for one this long before calling the operator stuck.
STUCK_SECONDS = 1200.0
POLL_SECONDS = 5.0
PHASES = ("nodes", "metrics", "predict", "decide", "act", "learn", "write", "conditions", "status")  # ftmoe_interval_phase_seconds
CONTROL_PLANE = ("kube-apiserver", "etcd", "kwok-controller", "kube-controller-manager", "kube-scheduler", "prometheus")


def scrape(port: int) -> dict[str, float]:
    """The operator's /metrics as {series: value}."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30).read().decode()
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            try:
                out[key] = float(value)
            except ValueError:
                pass
    return out


class OperatorPage:
    """Reads the operator's /metrics for the bench and keeps what the reads cost the operator.

    Rendering the page (a ``ftmoe_node_risk`` series a node: 400 KB at 5,000 nodes) takes the
    operator 0.1-0.3 CPU-seconds, so the bench reads it about when an interval is due, not
    every few seconds, and reports its reads and their CPU beside the interval's figures. A
    Prometheus scraping the operator every 30 s reads it about once an interval."""

    def __init__(self, port: int, pid: int):
        self.port, self.pid = port, pid
        self.reads, self.cpu_seconds = 0, 0.0  # since the last ``taken()``

    def read(self) -> dict[str, float]:
        before = proc_cpu(self.pid)
        page = scrape(self.port)
        # An upper bound: an interval running meanwhile on another thread counts too.
        self.cpu_seconds += proc_cpu(self.pid) - before
        self.reads += 1
        return page

    def taken(self) -> tuple[int, float]:
        """The reads and their CPU since the last call, and start counting again."""
        out = (self.reads, self.cpu_seconds)
        self.reads, self.cpu_seconds = 0, 0.0
        return out


def scrape_or_empty(port: int) -> dict[str, float]:
    try:
        return scrape(port)
    except OSError:
        return {}  # not serving yet


def stale(metrics: dict[str, float]) -> float:
    return total(metrics, "ftmoe_stale_nodes{", policy="bench") if any(k.startswith("ftmoe_stale_nodes{") for k in metrics) else 1.0


def total(metrics: dict[str, float], prefix: str, **labels: str) -> float:
    return sum(v for k, v in metrics.items() if k.startswith(prefix) and all(f'{a}="{b}"' in k for a, b in labels.items()))


def pids_named(names: tuple[str, ...]) -> dict[str, int]:
    out = {}
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                cmd = (p / "cmdline").read_bytes().split(b"\0")[0].decode()
            except OSError:
                continue
            base = Path(cmd).name
            if base in names or (base == "ftmoe" and b"simulate" in (p / "cmdline").read_bytes()):
                out[f"{base}-{p.name}"] = int(p.name)
    return out


def control_plane_cores(seconds: float, extra: dict[str, int]) -> dict[str, float]:
    pids = {**pids_named(CONTROL_PLANE), **extra}
    before = {k: proc_cpu(v) for k, v in pids.items()}
    time.sleep(seconds)
    return {k.rsplit("-", 1)[0]: round((proc_cpu(v) - before[k]) / seconds, 3) for k, v in pids.items() if Path(f"/proc/{v}").exists()}


RECORDED = "ftmoe:node_feature"


def policy(mode: str, prometheus: str, recorded: bool = False) -> dict[str, Any]:
    spec = {
        "apiVersion": "ftmoe.io/v1alpha1",
        "kind": "FaultTolerancePolicy",
        "metadata": {"name": "bench"},
        "spec": {
            "mode": mode,
            "interval": "30s",
            "prometheus": {"url": prometheus, "rateWindow": "1m", "timeout": "60s"},
            "hysteresis": {"riskFor": "30s", "healthyFor": "2m"},
            "maxUnavailable": "1%",
            "stormBreaker": {"maxAtRisk": "20%"},
            "drain": {"evictBarePods": True},  # the load pods are bare (bound, no controller)
        },
    }
    if recorded:
        spec["spec"]["prometheus"]["recordedFeatures"] = RECORDED  # type: ignore[index]
    return spec


def interval_row(
    m0: dict[str, float], m1: dict[str, float], done: int, cpu: float, reads: int, read_cpu: float, rss_mib: float
) -> dict[str, float]:
    """One interval's figures: gauges of the last interval as read in ``m1``, counters as their
    change since ``m0`` over the ``done`` intervals between the two reads."""

    def per_interval(name: str, **labels: str) -> float:
        return (total(m1, name, **labels) - total(m0, name, **labels)) / done

    return {
        "wall_seconds": per_interval("ftmoe_interval_duration_seconds_sum"),
        "cpu_seconds": cpu / done,
        "bench_reads": reads / done,
        "bench_read_cpu_seconds": read_cpu / done,
        "rss_mib": rss_mib,
        "api_requests": total(m1, "ftmoe_interval_api_requests{"),
        "api_reads": total(m1, "ftmoe_interval_api_requests{", kind="reads"),
        "api_writes": total(m1, "ftmoe_interval_api_requests{", kind="writes"),
        "api_evictions": total(m1, "ftmoe_interval_api_evictions{"),
        # events created (a write each), from the process-wide counter: the interval's, and any in between
        "api_events": per_interval("ftmoe_api_requests_total{", verb="create", resource="events"),
        "changed_nodes": total(m1, "ftmoe_interval_changed_nodes{"),
        "prometheus_query_seconds": per_interval("ftmoe_prometheus_query_duration_seconds_sum"),
        "informer_lists": total(m1, "ftmoe_informer_lists_total") - total(m0, "ftmoe_informer_lists_total"),
        # the collector's CPU in every thread, which no phase shows (operator/gc_clock.py)
        "gc_seconds": per_interval("ftmoe_gc_seconds_total"),
        "gc_full_seconds": per_interval("ftmoe_gc_seconds_total", generation="2"),
        **{f"phase_{ph}_seconds": per_interval("ftmoe_interval_phase_seconds_sum", phase=ph) for ph in PHASES},
    }


def measure(op_pid: int, port: int, intervals: int, interval_count: Any) -> list[dict[str, float]]:
    """One row per interval, from deltas of the operator's counters around it."""
    rows = []
    page = OperatorPage(port, op_pid)
    m0, c0 = page.read(), proc_cpu(op_pid)
    n0 = interval_count(m0)
    page.taken()  # the first read comes before the first interval
    finished, period = time.monotonic(), INTERVAL
    for _ in range(intervals):
        time.sleep(max(period - 2 * POLL_SECONDS, 0.0))  # the next interval is due about one period after the last
        deadline = time.monotonic() + STUCK_SECONDS
        while interval_count(m1 := page.read()) <= n0:
            if time.monotonic() > deadline:
                raise RuntimeError(f"no interval finished in {STUCK_SECONDS:.0f} s; see the operator's log")
            time.sleep(POLL_SECONDS)
        c1, now = proc_cpu(op_pid), time.monotonic()
        done = interval_count(m1) - n0
        period, finished = (now - finished) / done, now
        reads, read_cpu = page.taken()
        rows.append(interval_row(m0, m1, done, c1 - c0, reads, read_cpu, proc_mem(op_pid)[0]))
        print(json.dumps({k: round(v, 3) for k, v in rows[-1].items()}), flush=True)
        m0, c0, n0 = m1, c1, interval_count(m1)
    return rows


def medians(rows: list[dict[str, float]]) -> dict[str, float]:
    return {k: round(statistics.median(r[k] for r in rows), 3) for k in rows[0]}


def prom_first_fault(prometheus: str, node: str, since: float) -> float | None:
    q = urllib.parse.urlencode({"query": f'ftmoe_sim_fault_label{{node="{node}"}} > 0', "start": since, "end": time.time(), "step": "5s"})
    data = json.load(urllib.request.urlopen(f"{prometheus}/api/v1/query_range?{q}", timeout=30))["data"]["result"]
    return float(data[0]["values"][0][0]) if data else None


def detect_to_cordon(cluster: Any, nodes: list[str], since: float) -> list[dict[str, Any]]:
    from ftmoe.operator import annotations as A

    out = []
    for node in nodes:
        obj = json.loads(cluster.kubectl("get", "node", node, "-o", "json").stdout)
        cordoned = A.parse_time((obj["metadata"].get("annotations") or {}).get(A.CORDONED_AT))
        onset = prom_first_fault(cluster.prometheus_url, node, since)
        out.append(
            {
                "node": node,
                "onset": onset,
                "cordoned_at": cordoned,
                "seconds_after_onset": None if onset is None or cordoned is None else round(cordoned - onset, 1),
            }
        )
    return out


def run_scale(
    nodes: int, pods_per_node: int, intervals: int, faults: int, logs: Path, ports: dict[str, int], ftmoe: str, recorded: bool = False
) -> dict[str, Any]:
    from ftmoe.cluster.local import ClusterSettings, LocalCluster, port_busy
    from ftmoe.cluster.operator_access import apply_operator_manifests
    from ftmoe.cluster.scale import Heartbeat
    from ftmoe.cluster.waiting import wait_for

    cluster = LocalCluster("ftmoe-bench")
    cluster.down(quiet=True)
    wait_for(lambda: not port_busy(ports["api"]) and not port_busy(ports["prom"]), 120, "the previous cluster's ports to close")
    t0 = time.monotonic()
    cluster.up(ClusterSettings("ftmoe-bench", nodes, ports["api"], ports["prom"], pods_per_node))
    up_seconds = time.monotonic() - t0
    sim = op = None
    try:
        apply_operator_manifests(cluster.kubectl)
        sim = subprocess.Popen(
            [ftmoe, "simulate", "serve", "--cluster", "ftmoe-bench", "--port", str(ports["sim"]), "--fault-rate", "0"]
            + ["--step-seconds", str(INTERVAL)],
            stdout=(logs / f"sim-{nodes}.log").open("w"),
            stderr=subprocess.STDOUT,
        )
        q = urllib.parse.urlencode({"query": "count(node_memory_MemTotal_bytes)"})

        def series() -> bool:
            r = json.load(urllib.request.urlopen(f"{cluster.prometheus_url}/api/v1/query?{q}", timeout=30))["data"]["result"]
            return bool(r) and float(r[0]["value"][1]) >= nodes

        wait_for(series, 600, f"{nodes} node series")
        reads = "recorded" if recorded else "queries"
        if recorded:
            # The rules from the policy itself, through the command a user runs.
            manifest = logs / "policy-recorded.json"
            manifest.write_text(json.dumps(policy("Observe", cluster.prometheus_url, True)))
            subprocess.run([ftmoe, "operator", "recording-rules", "-f", str(manifest), "--local-cluster", "ftmoe-bench"], check=True)
        time.sleep(3 * INTERVAL)  # a rate window of samples
        idle = control_plane_cores(30, {"simulator": sim.pid})
        op = subprocess.Popen(
            [ftmoe, "operator", "run", "--kubeconfig", str(cluster.kubeconfig), "--metrics-port", str(ports["metrics"])]
            + ["--health-port", str(ports["health"])],
            stdout=(logs / f"operator-{nodes}.log").open("w"),
            stderr=subprocess.STDOUT,
        )

        def count(m: dict[str, float]) -> float:
            return total(m, "ftmoe_interval_duration_seconds_count", policy="bench")

        results = []
        for mode in ("Observe", "Evict"):
            cluster.kubectl("apply", "-f", "-", input=json.dumps(policy(mode, cluster.prometheus_url, recorded)))
            if mode == "Observe":
                # Warm: the caches filled, and a full model window of history in Prometheus for every node.
                wait_for(lambda: count(m := scrape_or_empty(ports["metrics"])) >= 2 and stale(m) == 0, 1200, "complete windows")
            injected, since = [], time.time()
            if mode == "Evict":
                injected = [f"node-{1 + (nodes // max(faults, 1)) * i}" for i in range(faults)]
                for node in injected:
                    query = urllib.parse.urlencode({"fault": "memory-leak", "node": node, "precursor": 3, "duration": 8})
                    urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{ports['sim']}/inject?{query}", method="POST"))
            rows = measure(op.pid, ports["metrics"], intervals, count)
            entry: dict[str, Any] = {
                "nodes": nodes,
                "pods": nodes * pods_per_node,
                "mode": mode,
                "prometheus_reads": reads,
                **medians(rows),
                "intervals": rows,
            }
            if injected:
                # The faults start after their precursor (3 steps); give each up to 8 more intervals to be cordoned.
                deadline = since + (3 + 8) * INTERVAL
                while time.time() < deadline and not all(d["cordoned_at"] for d in detect_to_cordon(cluster, injected, since)):
                    time.sleep(5)
                entry["detect_to_cordon"] = detect_to_cordon(cluster, injected, since)
                lat = [d["seconds_after_onset"] for d in entry["detect_to_cordon"] if d["seconds_after_onset"] is not None]
                entry["median_detect_to_cordon_seconds"] = statistics.median(lat) if lat else None
            results.append(entry)
            print(json.dumps({k: v for k, v in entry.items() if k != "intervals"}), flush=True)
        beat = Heartbeat.for_nodes(nodes)
        for e in results:
            e.update(
                cluster_up_seconds=round(up_seconds, 1),
                control_plane_cores=idle,
                node_status_every_seconds=beat.status_seconds,
                node_lease_seconds=beat.lease_seconds,
            )
        return {"nodes": nodes, "entries": results}
    finally:
        for p in (op, sim):
            if p is not None:
                p.terminate()
                p.wait(timeout=120)
        cluster.down(quiet=True)
