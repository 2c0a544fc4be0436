"""Live mode: the exporter's output, its control endpoints, and (on the local cluster)
Prometheus scraping it and a fault turning a node condition True."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from ftmoe.cluster import waiting
from ftmoe.contract.features import FEATURES, render_query
from ftmoe.simulator.config import SimConfig
from ftmoe.simulator.engine import F, Simulator
from ftmoe.simulator.live import LiveState, NodeExporterCollector, make_handler, parse_injection, registry_of, shard_ranges, targets
from ftmoe.simulator.traces import TracePool

NODES = [f"node-{i}" for i in range(4)]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture()
def clock() -> Clock:
    return Clock()


@pytest.fixture()
def live(pool: TracePool, clock: Clock) -> LiveState:
    state = LiveState(Simulator(SimConfig(hosts=4, intervals=100, seed=0), pool), NODES, clock=clock)
    for _ in range(3):
        state.advance()
        clock.now += 5.0
    return state


def test_exposition_parses_and_covers_every_query(live: LiveState, clock: Clock) -> None:
    registry = CollectorRegistry()
    registry.register(NodeExporterCollector(live))
    text = generate_latest(registry).decode()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    # every metric named in a default feature query is served
    import re

    for feature in FEATURES:
        for metric in re.findall(r"\b((?:node|kubelet|ftmoe)_[a-zA-Z0-9_]+)\{", feature.promql):
            # the text format names a counter family without _total; an untyped one keeps its name
            family = families.get(metric.removesuffix("_total")) if metric.endswith("_total") else families.get(metric)
            assert family is not None and (family.type == "counter") == metric.endswith("_total"), (feature.name, metric)
    idle = [s for s in families["node_cpu_seconds"].samples if s.labels["mode"] == "idle"]
    assert {s.labels["node"] for s in idle} == set(NODES)
    # counters advance with wall time: 3 intervals of 5 s, idle + busy = 15 s per cpu
    busy = {(s.labels["node"], s.labels["cpu"]): s.value for s in families["node_cpu_seconds"].samples if s.labels["mode"] == "user"}
    for s in idle:
        assert s.value + busy[(s.labels["node"], s.labels["cpu"])] == pytest.approx(15.0)
    mem = {s.labels["node"]: s.value for s in families["node_memory_MemTotal_bytes"].samples}
    assert mem["node-0"] == 4 * 1024**3 and mem["node-3"] == 8 * 1024**3


def series(registry: CollectorRegistry) -> set[tuple[str, tuple[tuple[str, str], ...]]]:
    text = generate_latest(registry).decode()
    return {(s.name, tuple(sorted(s.labels.items()))) for f in text_string_to_metric_families(text) for s in f.samples}


def test_shards_serve_every_node_once_and_register_as_separate_targets(live: LiveState) -> None:
    assert shard_ranges(4, 3) == [range(0, 3), range(3, 4)] and shard_ranges(4, 500) == [range(0, 4)]
    whole, parts = series(registry_of(live)), [series(registry_of(live, r)) for r in shard_ranges(4, 3)]
    assert {dict(labels)["node"] for _, labels in parts[1]} == {"node-3"}
    assert parts[0] | parts[1] == whole and not parts[0] & parts[1]
    assert targets(9105, 1) == [{"targets": ["127.0.0.1:9105"], "labels": {"job": "ftmoe-simulator"}}]
    sharded = targets(9105, 2)
    assert [t["labels"]["__metrics_path__"] for t in sharded] == ["/metrics/shard/0", "/metrics/shard/1"]
    assert len({t["labels"]["instance"] for t in sharded}) == 2  # each shard's `up` is its own series


def test_a_shard_path_is_served_and_an_unknown_one_is_a_404(live: LiveState) -> None:
    from http.server import ThreadingHTTPServer
    from threading import Thread

    registries = [registry_of(live, r) for r in shard_ranges(4, 3)]
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(live, registry_of(live), registries))
    Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        body = urllib.request.urlopen(f"{url}/metrics/shard/1", timeout=10).read().decode()
        assert 'node="node-3"' in body and 'node="node-0"' not in body
        for bad in ("/metrics/shard/2", "/metrics/shard/x"):
            with pytest.raises(urllib.error.HTTPError, match="404"):
                urllib.request.urlopen(url + bad, timeout=10)
    finally:
        server.shutdown()


def cpu_busy(live: LiveState) -> np.ndarray:
    with live.lock:
        return live.counters_now().cpu_busy


def test_counters_grow_between_steps_at_the_current_rate(live: LiveState, clock: Clock) -> None:
    """A scrape between two steps sees the share of the interval that has passed, so rate()
    over any window is the simulated rate (no jumps that alias with the scrape interval)."""
    util = live.features[:, F["cpu_utilisation"]].astype(float)
    start = cpu_busy(live)
    clock.now += 2.0
    np.testing.assert_allclose(cpu_busy(live) - start, 2.0 * util, rtol=1e-6)
    clock.now += 3.0
    np.testing.assert_allclose(cpu_busy(live) - start, 5.0 * util, rtol=1e-6)
    live.advance()  # the step books the interval at the pace it ran; nothing jumps
    np.testing.assert_allclose(cpu_busy(live) - start, 5.0 * util, rtol=1e-6)


def test_injection_spec() -> None:
    assert parse_injection("memory-leak:node-3") == ("memory-leak", "node-3", 0)
    assert parse_injection("disk-filling:node-1@12") == ("disk-filling", "node-1", 12)
    with pytest.raises(ValueError, match="FAULT:NODE"):
        parse_injection("memory-leak")


def test_injected_fault_happens(live: LiveState) -> None:
    live.sim.faults.hazard_scale = 0.0
    live.pending_injections.append((2, "memory-leak", 2, 7))
    seen = []
    for _ in range(30):
        _, labels = live.advance()
        seen.append(int(labels[2]))
    assert seen.count(2) == 7  # a memory fault on node-2 lasting exactly the 7 intervals asked for
    assert live.state()["nodes"]["node-2"]["phase"] in {"fault", "recovering", "healthy"}


def wait_for(fn, timeout: float, what: str) -> Any:  # type: ignore[no-untyped-def]
    return waiting.wait_for(fn, timeout, what, error=AssertionError)


def prom_query(url: str, query: str) -> list[dict]:
    with urllib.request.urlopen(f"{url}/api/v1/query?" + urllib.parse.urlencode({"query": query}), timeout=10) as resp:
        return json.load(resp)["data"]["result"]


@pytest.mark.cluster
def test_live_mode_feeds_prometheus_and_node_conditions(local_cluster: Any, local_cluster_name: str, tmp_path: Path) -> None:
    if local_cluster is None:
        pytest.skip("needs the local cluster's Prometheus; FTMOE_KUBECONFIG points elsewhere")
    from kubernetes import client, config

    port = 29105
    ftmoe = Path(sys.executable).parent / "ftmoe"
    log = (tmp_path / "serve.log").open("w")
    proc = subprocess.Popen(
        [
            str(ftmoe),
            "simulate",
            "serve",
            "--cluster",
            local_cluster_name,
            "--port",
            str(port),
            "--step-seconds",
            "1",
            "--fault-rate",
            "0",
            "--inject",
            "memory-leak:node-3@2",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    api = client.CoreV1Api(config.new_client_from_config(config_file=str(local_cluster.kubeconfig)))
    try:
        prom = local_cluster.prometheus_url
        # Prometheus discovers the simulator through the file_sd target and scrapes it.
        query = render_query("memory_used_fraction")
        series = wait_for(lambda: (r := prom_query(prom, query)) and len(r) == 16 and r, 90, "16 node series in Prometheus")
        assert {s["metric"]["node"] for s in series} == {f"node-{i}" for i in range(16)}
        assert all(0 < float(s["value"][1]) < 1 for s in series)
        # Every default feature query (the operator's contract) returns one series per node.
        for feature in FEATURES:
            q = render_query(feature, window="30s")
            wait_for(lambda q=q: len(prom_query(prom, q)) == 16, 60, f"16 series for {feature.name}: {q}")

        def memory_pressure() -> bool:
            conds = api.read_node("node-3").status.conditions
            return any(c.type == "MemoryPressure" and c.status == "True" for c in conds)

        wait_for(memory_pressure, 60, "MemoryPressure=True on node-3")
        node = api.read_node("node-3")
        assert node.metadata.annotations.get("condition.sim.ftmoe.io/MemoryPressure") == "True"
        # the other nodes stay healthy: only injected faults at --fault-rate 0
        others = [n for n in api.list_node().items if n.metadata.name != "node-3"]
        assert not any(c.type == "MemoryPressure" and c.status == "True" for n in others for c in n.status.conditions)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    assert not (local_cluster.targets_dir / "ftmoe-simulator.json").exists()


@pytest.mark.cluster
def test_a_sharded_simulator_reaches_prometheus_as_one_target_a_shard(local_cluster: Any, local_cluster_name: str, tmp_path: Path) -> None:
    """At thousands of nodes the simulator serves its metrics as several targets (--shard-nodes),
    so that no single scrape of the whole fleet can miss its deadline and blank every node."""
    if local_cluster is None:
        pytest.skip("needs the local cluster's Prometheus; FTMOE_KUBECONFIG points elsewhere")
    port = 29106
    ftmoe = Path(sys.executable).parent / "ftmoe"
    log = (tmp_path / "serve.log").open("w")
    argv = [str(ftmoe), "simulate", "serve", "--cluster", local_cluster_name, "--port", str(port), "--step-seconds", "1"]
    proc = subprocess.Popen([*argv, "--fault-rate", "0", "--no-conditions", "--shard-nodes", "5"], stdout=log, stderr=subprocess.STDOUT)
    try:
        prom = local_cluster.prometheus_url
        up = wait_for(
            lambda: (r := prom_query(prom, f'up{{job="ftmoe-simulator",instance=~"127.0.0.1:{port}/.*"}} == 1')) and len(r) == 4 and r,
            90,
            "4 shard targets up",
        )
        assert {s["metric"]["instance"] for s in up} == {f"127.0.0.1:{port}/shard/{i}" for i in range(4)}  # 16 nodes, 5 a shard
        for feature in FEATURES:
            q = render_query(feature, window="30s")
            wait_for(lambda q=q: len(prom_query(prom, q)) == 16, 60, f"16 series for {feature.name}: {q}")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    assert not (local_cluster.targets_dir / "ftmoe-simulator.json").exists()
    bad = subprocess.run([*argv, "--shard-nodes", "0"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1 and "--shard-nodes must be at least 1" in bad.stderr and "Traceback" not in bad.stderr


def test_serve_without_a_cluster_serves_the_named_nodes_and_registers_its_target(tmp_path: Path) -> None:
    """`--nodes N` (a Prometheus load test, bench/prometheus_reads.py): node-0 .. node-N-1, no kubeconfig."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "ftmoe"), "simulate", "serve", "--nodes", "3", "--targets-dir", str(tmp_path)]
        + ["--port", str(port), "--step-seconds", "1", "--cluster", "no-such-cluster"],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        target = waiting.wait_for(lambda: next(tmp_path.glob("*.json"), None), 60, "the target file", error=AssertionError)
        assert json.loads(target.read_text())[0]["targets"] == [f"127.0.0.1:{port}"]
        page = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
        memory = [f for f in text_string_to_metric_families(page) if f.name == "node_memory_MemTotal_bytes"][0]
        assert sorted(s.labels["node"] for s in memory.samples) == ["node-0", "node-1", "node-2"]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    assert proc.returncode == 0 and not list(tmp_path.glob("*.json"))  # unregistered on the way out
