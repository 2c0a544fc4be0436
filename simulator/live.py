"""Live mode: the simulator drives the local cluster's fake nodes in real time.

Each simulated host is one fake node (``node-<i>``). Every ``--step-seconds`` the
simulator advances one interval, serves the hosts' metrics in node_exporter style on
``/metrics`` (counters grow continuously in wall-clock seconds, so ``rate()`` gives the simulated
utilisation; above ``--shard-nodes`` nodes also in shards, ``/metrics/shard/<i>``, each its
own Prometheus target), and mirrors fault starts and ends into node conditions: memory faults set
MemoryPressure, disk faults DiskPressure, CPU faults PIDPressure. The conditions are set
both directly and as ``condition.sim.ftmoe.io/<Type>`` annotations that the local
cluster's node heartbeat (ftmoe/cluster/stages/node-heartbeat.yaml) keeps.

Control endpoints on the same port: ``POST /inject?fault=memory-leak&node=node-3[&precursor=N][&duration=N]``,
``POST /drift``, ``GET /state``.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, fields
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import numpy as np
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, UnknownMetricFamily
from prometheus_client.registry import Collector

from ftmoe.simulator.config import CPU, DISK, MEMORY, SimConfig, drifted_faults
from ftmoe.simulator.engine import F, Simulator
from ftmoe.simulator.faults import FAULT
from ftmoe.simulator.traces import load_pool

log = logging.getLogger("ftmoe.simulator.live")

CONDITION_FOR = {CPU: "PIDPressure", MEMORY: "MemoryPressure", DISK: "DiskPressure"}
ANNOTATION = "condition.sim.ftmoe.io/{}"
TARGET_FILE = "ftmoe-simulator.json"
SHARD_NODES = 500  # 15,500 samples: a scrape well inside the 5 s scrape interval on a loaded 2-core machine
SHARD_PATH = "/metrics/shard/"


@dataclass
class Counters:
    """node_exporter-style counters per host, advanced by wall-clock time."""

    cpu_idle: np.ndarray
    cpu_busy: np.ndarray
    pgmajfault: np.ndarray
    io_time: np.ndarray
    io_weighted: np.ndarray
    reads: np.ndarray
    writes: np.ndarray
    read_bytes: np.ndarray
    written_bytes: np.ndarray
    rx_bytes: np.ndarray
    tx_bytes: np.ndarray
    mig_in: np.ndarray
    mig_out: np.ndarray

    @classmethod
    def zeros(cls, hosts: int) -> Counters:
        return cls(*[np.zeros(hosts) for _ in range(13)])


def accumulate(c: Counters, f: np.ndarray, dt: float) -> None:
    """Advance the rate counters by ``dt`` seconds at the rates in features ``f``."""
    util = f[:, F["cpu_utilisation"]].astype(float)
    c.cpu_idle += (1 - util) * dt
    c.cpu_busy += util * dt
    c.pgmajfault += f[:, F["memory_major_faults_per_second"]] * dt
    io = f[:, F["disk_io_utilisation"]].astype(float)
    ops = np.maximum(io * 200.0, 0.1) * dt  # a nominal 200 IOPS at 100 % busy
    c.io_time += io * dt
    c.reads += ops / 2
    c.writes += ops / 2
    c.io_weighted += ops * f[:, F["disk_io_latency_seconds"]]
    c.read_bytes += f[:, F["disk_read_bytes_per_second"]] * dt
    c.written_bytes += f[:, F["disk_write_bytes_per_second"]] * dt
    c.rx_bytes += f[:, F["network_receive_bytes_per_second"]] * dt
    c.tx_bytes += f[:, F["network_transmit_bytes_per_second"]] * dt


class LiveState:
    """The simulator plus what the exporter shows; one lock guards both.

    Counters grow continuously at the current interval's rates, as a real node's do: a
    scrape at any moment sees what has accrued so far, so ``rate()`` over any window gives
    the simulated rates, with no aliasing between the step and the scrape interval."""

    def __init__(self, sim: Simulator, nodes: list[str], clock: Callable[[], float] = time.monotonic):
        self.sim = sim
        self.nodes = nodes
        self.clock = clock
        self.lock = threading.Lock()
        self.features = np.zeros((sim.H, len(F)), dtype=np.float32)
        self.labels = np.zeros(sim.H, dtype=np.int8)
        self.counters = Counters.zeros(sim.H)  # as of ``stepped_at``
        self.stepped_at: float | None = None
        self.pending_injections: list[tuple[int, str, int | None, int | None]] = []

    def advance(self) -> tuple[np.ndarray, np.ndarray]:
        with self.lock:
            now = self.clock()
            if self.stepped_at is not None:
                accumulate(self.counters, self.features, now - self.stepped_at)
            for host, cause, precursor, duration in self.pending_injections:
                self.sim.inject(host, cause, precursor, duration)
            self.pending_injections.clear()
            before = self.labels.copy()
            features, labels, _ = self.sim.step()
            # Migrations are counts per interval, not rates: they add up as they happen.
            self.counters.mig_in += features[:, F["migrations_in"]]
            self.counters.mig_out += features[:, F["migrations_out"]]
            self.features, self.labels, self.stepped_at = features, labels, now
            return before, labels

    def counters_now(self) -> Counters:
        """The counters as a scrape sees them now (call with the lock held)."""
        c = Counters(*[np.copy(getattr(self.counters, f.name)) for f in fields(Counters)])
        if self.stepped_at is not None:
            accumulate(c, self.features, max(self.clock() - self.stepped_at, 0.0))
        return c

    def state(self) -> dict[str, Any]:
        with self.lock:
            faults = self.sim.faults
            return {
                "interval": self.sim.t,
                "nodes": {
                    n: {
                        "phase": ["healthy", "precursor", "fault", "recovering"][int(faults.phase[i])],
                        "fault_type": ["none", "cpu", "memory", "disk"][int(self.labels[i])],
                        "cause": faults.causes[int(faults.cause[i])].name if faults.cause[i] >= 0 else None,
                    }
                    for i, n in enumerate(self.nodes)
                },
            }


class NodeExporterCollector(Collector):
    """Serves the simulated hosts (all, or the ``hosts`` of one shard) as node_exporter and
    kubelet series with a ``node`` label."""

    def __init__(self, live: LiveState, hosts: range | None = None):
        self.live = live
        self.hosts = hosts if hosts is not None else range(len(live.nodes))

    def collect(self) -> Iterable[Any]:
        live = self.live
        with live.lock:
            f, c, sim, nodes, hosts = live.features.copy(), live.counters_now(), live.sim, live.nodes, self.hosts
            cores = sim.cores.astype(int)
            cpu = CounterMetricFamily("node_cpu_seconds_total", "Seconds the CPUs spent in each mode.", labels=["node", "cpu", "mode"])
            freq = GaugeMetricFamily("node_cpu_scaling_frequency_hertz", "Current CPU frequency.", labels=["node", "cpu"])
            fmax = GaugeMetricFamily("node_cpu_scaling_frequency_max_hertz", "Maximum CPU frequency.", labels=["node", "cpu"])
            for h in hosts:
                node = nodes[h]
                for k in range(cores[h]):
                    cpu.add_metric([node, str(k), "idle"], float(c.cpu_idle[h]))
                    cpu.add_metric([node, str(k), "user"], float(c.cpu_busy[h]))
                    hz = sim.cpu_capacity[h] / sim.cores[h] * 1e6
                    freq.add_metric([node, str(k)], float(hz * f[h, F["cpu_frequency_ratio"]]))
                    fmax.add_metric([node, str(k)], float(hz))
            yield from (cpu, freq, fmax)

            def per_node(
                kind: type[GaugeMetricFamily] | type[CounterMetricFamily] | type[UnknownMetricFamily],
                name: str,
                doc: str,
                values: np.ndarray,
                extra: dict[str, str] | None = None,
            ) -> Any:
                extra = extra or {}
                family = kind(name, doc, labels=["node", *extra])
                for h in hosts:
                    family.add_metric([nodes[h], *extra.values()], float(values[h]))
                return family

            def gauge(name: str, doc: str, values: np.ndarray, extra: dict[str, str] | None = None) -> GaugeMetricFamily:
                return per_node(GaugeMetricFamily, name, doc, values, extra)

            def counter(name: str, doc: str, values: np.ndarray, extra: dict[str, str] | None = None) -> CounterMetricFamily:
                return per_node(CounterMetricFamily, name, doc, values, extra)

            total = sim.memory_capacity
            used = f[:, F["memory_used_fraction"]]
            disk = {"device": "vda", "mountpoint": "/", "fstype": "ext4"}
            dev = {"device": "vda"}
            net = {"device": "eth0"}
            yield gauge("node_load1", "1m load average.", f[:, F["load_per_core"]] * sim.cores)
            yield gauge("node_memory_MemTotal_bytes", "Memory information field MemTotal_bytes.", total)
            yield gauge("node_memory_MemAvailable_bytes", "Memory information field MemAvailable_bytes.", total * (1 - used))
            # node_exporter exposes vmstat fields untyped, so the name has no _total suffix.
            yield per_node(UnknownMetricFamily, "node_vmstat_pgmajfault", "/proc/vmstat information field pgmajfault.", c.pgmajfault)
            yield gauge("node_filesystem_size_bytes", "Filesystem size in bytes.", sim.disk_capacity, disk)
            yield gauge(
                "node_filesystem_avail_bytes",
                "Filesystem space available to non-root users in bytes.",
                sim.disk_capacity * (1 - f[:, F["disk_used_fraction"]]),
                disk,
            )
            yield counter("node_disk_io_time_seconds_total", "Total seconds spent doing I/Os.", c.io_time, dev)
            yield counter("node_disk_io_time_weighted_seconds_total", "The weighted # of seconds spent doing I/Os.", c.io_weighted, dev)
            yield counter("node_disk_reads_completed_total", "The total number of reads completed successfully.", c.reads, dev)
            yield counter("node_disk_writes_completed_total", "The total number of writes completed successfully.", c.writes, dev)
            yield counter("node_disk_read_bytes_total", "The total number of bytes read successfully.", c.read_bytes, dev)
            yield counter("node_disk_written_bytes_total", "The total number of bytes written successfully.", c.written_bytes, dev)
            yield counter("node_network_receive_bytes_total", "Network device statistic receive_bytes.", c.rx_bytes, net)
            yield counter("node_network_transmit_bytes_total", "Network device statistic transmit_bytes.", c.tx_bytes, net)
            yield gauge(
                "kubelet_running_containers",
                "Number of containers currently running.",
                f[:, F["running_containers"]],
                {"container_state": "running"},
            )
            yield counter("ftmoe_node_migrations_in_total", "Containers that moved onto the node.", c.mig_in)
            yield counter("ftmoe_node_migrations_out_total", "Containers that moved off the node.", c.mig_out)
            yield gauge("ftmoe_sim_fault_label", "The simulator's ground truth: 0 none, 1 cpu, 2 memory, 3 disk.", live.labels)
            yield gauge("ftmoe_sim_interval", "Intervals simulated so far.", np.full(len(nodes), sim.t))


def shard_ranges(hosts: int, per_shard: int) -> list[range]:
    """Contiguous blocks of at most ``per_shard`` hosts (one block when they all fit)."""
    return [range(i, min(i + per_shard, hosts)) for i in range(0, hosts, per_shard)] or [range(0)]


def registry_of(live: LiveState, hosts: range | None = None) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(NodeExporterCollector(live, hosts))
    return registry


def targets(port: int, shards: int) -> list[dict[str, Any]]:
    """Prometheus file_sd entries: one target, or one per shard with its own ``instance`` (so
    that each shard's ``up`` is its own series). A shard scrapes in a fraction of the time of
    the whole fleet, and one that misses its deadline leaves a gap in its own nodes only:
    5,000 nodes from one target (155,000 samples, 3 s a scrape on a loaded 2-core machine)
    missed scrapes for the whole fleet at once."""
    address = f"127.0.0.1:{port}"
    if shards <= 1:
        return [{"targets": [address], "labels": {"job": "ftmoe-simulator"}}]
    return [
        {
            "targets": [address],
            "labels": {"job": "ftmoe-simulator", "instance": f"{address}/shard/{i}", "__metrics_path__": f"{SHARD_PATH}{i}"},
        }
        for i in range(shards)
    ]


def make_handler(live: LiveState, registry: CollectorRegistry, shards: Sequence[CollectorRegistry] = ()) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, fmt: str, *args: Any) -> None:
            log.debug(fmt, *args)

        def _reply(self, code: int, body: bytes, ctype: str = "application/json") -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            path = urlparse(self.path).path
            shard = path.removeprefix(SHARD_PATH)
            if path == "/metrics" or (shard != path and shard.isdigit() and int(shard) < len(shards)):
                page = registry if path == "/metrics" else shards[int(shard)]
                self._reply(200, generate_latest(page), "text/plain; version=0.0.4; charset=utf-8")
            elif path == "/state":
                self._reply(200, json.dumps(live.state()).encode())
            elif path == "/healthz":
                self._reply(200, b"ok", "text/plain")
            else:
                self._reply(404, b'{"error": "try /metrics, /state or POST /inject"}')

        def do_POST(self) -> None:  # noqa: N802 - http.server's method name
            url = urlparse(self.path)
            q = {k: v[0] for k, v in parse_qs(url.query).items()}
            try:
                if url.path == "/inject":
                    host = node_index(live.nodes, q.get("node", ""))
                    cause = q.get("fault", "")
                    names = [c.name for c in live.sim.faults.causes]
                    if cause not in names:
                        raise ValueError(f"unknown fault {cause!r}; choose one of: {', '.join(names)}")
                    precursor = int(q["precursor"]) if "precursor" in q else None
                    duration = int(q["duration"]) if "duration" in q else None
                    with live.lock:
                        live.pending_injections.append((host, cause, precursor, duration))
                    self._reply(202, json.dumps({"injected": cause, "node": live.nodes[host]}).encode())
                elif url.path == "/drift":
                    with live.lock:
                        live.sim.faults.set_config(drifted_faults())
                    self._reply(202, b'{"drift": true}')
                else:
                    self._reply(404, b'{"error": "unknown endpoint"}')
            except ValueError as err:
                self._reply(400, json.dumps({"error": str(err)}).encode())

    return Handler


def node_index(nodes: list[str], name: str) -> int:
    if name not in nodes:
        raise ValueError(f"unknown node {name!r}; simulated nodes are {nodes[0]} .. {nodes[-1]}")
    return nodes.index(name)


def parse_injection(spec: str) -> tuple[str, str, int]:
    """``memory-leak:node-3`` or ``memory-leak:node-3@10`` (start at interval 10)."""
    try:
        cause, rest = spec.split(":", 1)
        node, _, at = rest.partition("@")
        return cause, node, int(at) if at else 0
    except ValueError as err:
        raise ValueError(f"--inject {spec!r}: expected FAULT:NODE[@INTERVAL], e.g. memory-leak:node-3") from err


class NodeConditions:
    """Mirrors fault starts and ends into node conditions through the API server."""

    def __init__(self, kubeconfig: Path):
        from kubernetes import client, config

        self.api = client.CoreV1Api(config.new_client_from_config(config_file=str(kubeconfig)))

    def set(self, node: str, condition: str, active: bool, message: str, since: str | None = None) -> str:
        """Returns the transition time written (``since``, when given: a re-assertion keeps it)."""
        from kubernetes.client.exceptions import ApiException

        status = "True" if active else "False"
        now = since or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        annotations = {ANNOTATION.format(condition): status if active else None, ANNOTATION.format("message"): message if active else None}
        try:
            self.api.patch_node(node, {"metadata": {"annotations": annotations}})
            self.api.patch_node_status(
                node,
                {
                    "status": {
                        "conditions": [
                            {
                                "type": condition,
                                "status": status,
                                "reason": "SimulatedFault" if active else "SimulatedRecovery",
                                "message": message,
                                "lastHeartbeatTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                                "lastTransitionTime": now,
                            }
                        ]
                    }
                },
            )
        except ApiException as err:
            log.warning("could not set %s=%s on %s: %s", condition, status, node, err.reason)
        return now


# kwok's heartbeat (every 10-15 s) writes the conditions it computed from its cache; one
# computed just before a change can write the old status back once. The simulator writes
# each change again on this many following steps, so such a stale write lasts one step at most.
REASSERT_STEPS = 4


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cluster", default="ftmoe", help="local cluster name (for its kubeconfig and Prometheus targets)")
    p.add_argument("--kubeconfig", type=Path, help="kubeconfig to use instead of the local cluster's")
    p.add_argument("--targets-dir", type=Path, help="Prometheus file_sd folder (default: the local cluster's)")
    p.add_argument("--port", type=int, default=9105, help="port for /metrics and the control endpoints")
    p.add_argument(
        "--shard-nodes",
        type=int,
        default=SHARD_NODES,
        help="above this many nodes, serve the metrics as several Prometheus targets of at most this many nodes each",
    )
    p.add_argument("--step-seconds", type=float, default=5.0, help="wall-clock seconds per simulated interval")
    p.add_argument(
        "--fault-rate", type=float, default=1.0, help="scale of the random fault rate (0: only injected faults; 1: the paper's rates)"
    )
    p.add_argument(
        "--inject",
        action="append",
        default=[],
        metavar="FAULT:NODE[@INTERVAL]",
        help="inject a fault, e.g. memory-leak:node-3 (repeatable)",
    )
    p.add_argument("--drift-at", type=int, help="switch to the drifted fault pattern at this interval")
    p.add_argument("--intervals", type=int, help="stop after this many intervals (default: run until interrupted)")
    p.add_argument("--no-conditions", action="store_true", help="do not touch node conditions")
    p.add_argument(
        "--nodes",
        type=int,
        help="serve node-0 .. node-<N-1> without a cluster (implies --no-conditions; needs --targets-dir): "
        "metrics for a Prometheus on its own, e.g. to load-test queries at a fleet's size",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (workload traces, random faults)")


def cmd_serve(args: argparse.Namespace) -> int:
    from ftmoe.cluster.local import LocalCluster, port_busy

    cluster = LocalCluster(args.cluster)
    kubeconfig = args.kubeconfig or cluster.kubeconfig
    targets_dir = args.targets_dir or cluster.targets_dir
    injections = [parse_injection(s) for s in args.inject]
    if args.shard_nodes < 1:
        print(f"error: --shard-nodes must be at least 1 (got {args.shard_nodes}); the default is {SHARD_NODES}", file=sys.stderr)
        return 1
    if port_busy(args.port):  # before the cluster is read, so the flag to change is named first
        print(
            f"error: port {args.port} is already in use on 127.0.0.1: stop what uses it "
            f"(`ss -ltnp 'sport = :{args.port}'` shows it) or pick another with --port",
            file=sys.stderr,
        )
        return 1
    if args.nodes is not None:
        if args.nodes < 1 or args.targets_dir is None:
            print("error: --nodes needs a count of at least 1 and --targets-dir (the Prometheus file_sd folder)", file=sys.stderr)
            return 1
        args.no_conditions = True
        nodes = [f"node-{i}" for i in range(args.nodes)]
    else:
        nodes = discover_nodes(kubeconfig) if kubeconfig.is_file() else []
    if not nodes:
        print(f"error: no kwok nodes found through {kubeconfig}; start the cluster with `ftmoe cluster up`", file=sys.stderr)
        return 1
    config = SimConfig(hosts=len(nodes), intervals=args.intervals or 10**9, seed=args.seed)
    if args.drift_at is not None:
        config = config.with_(drift=drifted_faults(), drift_at=args.drift_at)
    sim = Simulator(config, load_pool())
    sim.faults.hazard_scale = args.fault_rate
    for cause, node, _ in injections:
        node_index(nodes, node)
        if cause not in [c.name for c in sim.faults.causes]:
            print(f"error: unknown fault {cause!r}; choose one of: {', '.join(c.name for c in sim.faults.causes)}", file=sys.stderr)
            return 1
    live = LiveState(sim, nodes)
    shards = shard_ranges(len(nodes), args.shard_nodes)
    shard_registries = [registry_of(live, r) for r in shards] if len(shards) > 1 else []
    try:
        server = ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(live, registry_of(live), shard_registries))
    except OSError as err:
        print(
            f"error: cannot serve on 127.0.0.1:{args.port} ({err.strerror}): stop what uses it "
            f"(`ss -ltnp 'sport = :{args.port}'` shows it) or pick another port with --port",
            file=sys.stderr,
        )
        return 1
    threading.Thread(target=server.serve_forever, daemon=True).start()
    targets_dir.mkdir(parents=True, exist_ok=True)
    target = targets_dir / TARGET_FILE
    target.write_text(json.dumps(targets(args.port, len(shards))))
    conditions = None if args.no_conditions else NodeConditions(kubeconfig)
    reassert: dict[tuple[str, str], tuple[bool, str, str, int]] = {}
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print(
        f"serving {len(nodes)} simulated nodes on http://127.0.0.1:{args.port}/metrics"
        + (f" and as {len(shards)} shards of up to {args.shard_nodes} ({SHARD_PATH}0..{len(shards) - 1})" if len(shards) > 1 else "")
        + f", one interval every {args.step_seconds:g}s; registered in {target}",
        file=sys.stderr,
        flush=True,
    )
    try:
        while not stop.is_set() and (args.intervals is None or sim.t < args.intervals):
            for cause, node, at in injections:
                if at == sim.t:
                    live.pending_injections.append((nodes.index(node), cause, None, None))
            before, after = live.advance()
            if conditions is not None:
                for key, (active, message, since, left) in list(reassert.items()):
                    conditions.set(key[0], key[1], active, message, since)
                    reassert[key] = (active, message, since, left - 1)
                    if left <= 1:
                        del reassert[key]
            for h in np.flatnonzero(before != after):
                old, new = int(before[h]), int(after[h])
                if conditions is not None and old:
                    since = conditions.set(nodes[h], CONDITION_FOR[old], False, "fault ended")
                    reassert[(nodes[h], CONDITION_FOR[old])] = (False, "fault ended", since, REASSERT_STEPS)
                if conditions is not None and new:
                    cause = sim.faults.causes[int(sim.faults.cause[h])].name
                    since = conditions.set(nodes[h], CONDITION_FOR[new], True, f"simulated {cause}")
                    reassert[(nodes[h], CONDITION_FOR[new])] = (True, f"simulated {cause}", since, REASSERT_STEPS)
                log.info("interval %d: %s %s -> %s", sim.t - 1, nodes[h], old, new)
            stop.wait(args.step_seconds)
    except KeyboardInterrupt:
        pass
    finally:
        target.unlink(missing_ok=True)
        server.shutdown()
        if conditions is not None:
            for h in np.flatnonzero(sim.faults.phase == FAULT):
                conditions.set(nodes[h], CONDITION_FOR[int(sim.faults.fault_type[h])], False, "simulator stopped")
    return 0


def discover_nodes(kubeconfig: Path) -> list[str]:
    """The cluster's kwok nodes, in the simulator's host order (node-0, node-1, ...)."""
    from kubernetes import client, config

    api = client.CoreV1Api(config.new_client_from_config(config_file=str(kubeconfig)))
    names = [
        str(n.metadata.name)
        for n in api.list_node().items
        if n.metadata is not None and (n.metadata.annotations or {}).get("kwok.x-k8s.io/node") == "fake"
    ]

    def key(name: str) -> tuple[int, str]:
        tail = name.rsplit("-", 1)[-1]
        return (int(tail), name) if tail.isdigit() else (10**9, name)

    return sorted(names, key=key)
