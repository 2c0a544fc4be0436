"""The parts of an interval that grow with the node count, without a cluster:
`bench/interval_parts.py --nodes 500,5000`.

- append: one interval into a full self-grading buffer (operator/learning/experience.py),
  at the buffer's size cap (256 MB of features at 5,000 nodes, bufferIntervals 2,880).
- decode: one feature's query_range answer for every node (3 steps), by msgspec into
  numbers (operator/prometheus_range.py) and by the standard library's json, as
  prometheus-api-client decodes it.
- fill: one feature's Prometheus response for every node into the window
  (operator/node_metrics.fill), a full window of 10 steps and an incremental read of 3.
- parse: every node's cordon history and timestamps read from its annotations, as each
  interval does (operator/node_facts.facts), after the first interval.
- node cache: the memory of every node as the watch delivers it (a real kubelet's node:
  50 images, addresses, nodeInfo, managedFields) and as the node informer keeps it
  (operator/cluster_cache.slim_node), measured with tracemalloc.

Medians of ``--repeats`` calls, in milliseconds; the whole cluster bench is bench/operator.py --scale.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np
from common import machine, write

from ftmoe.contract.features import FEATURE_NAMES
from ftmoe.operator import annotations as A
from ftmoe.operator.cluster_cache import slim_node
from ftmoe.operator.learning.experience import Experience
from ftmoe.operator.learning.learner import BUFFER_BYTES, buffer_cap
from ftmoe.operator.node_metrics import fill
from ftmoe.operator.prometheus_range import decode


def median_ms(call: Callable[[], Any], repeats: int) -> float:
    took = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        call()
        took.append(time.perf_counter() - t0)
    return round(1000 * statistics.median(took), 3)


def full_buffer(nodes: list[str], features: int) -> tuple[Experience, int, Callable[[], None]]:
    cap = buffer_cap(2880, len(nodes), features)
    exp = Experience([], [f"f{i}" for i in range(features)], ["normal", "memory"])
    values = np.random.default_rng(0).random((len(nodes), features)).astype(np.float32)
    risk, zeros = np.zeros(len(nodes), np.float32), np.zeros(len(nodes), np.int8)
    clock = iter(range(10**9))

    def append() -> None:
        exp.append(float(next(clock)), nodes, values, risk, zeros, zeros, cap, 1e12)

    for _ in range(cap):
        append()
    return exp, cap, append


def response(nodes: list[str], times: np.ndarray) -> bytes:
    """A query_range answer's body as Prometheus writes it (values as strings)."""
    rng = np.random.default_rng(0)
    result = [{"metric": {"node": n}, "values": [[float(t), repr(float(rng.random()))] for t in times]} for n in nodes]
    return json.dumps({"status": "success", "data": {"resultType": "matrix", "result": result}}).encode()


def kubelet_node(i: int) -> str:
    """One node as a real kubelet reports it (nodeStatusMaxImages 50), as watch event JSON."""
    stamp = "2026-12-03T10:00:00Z"
    conditions = [
        {
            "type": t,
            "status": "False" if t != "Ready" else "True",
            "lastHeartbeatTime": stamp,
            "lastTransitionTime": stamp,
            "reason": f"Kubelet{t}",
            "message": f"kubelet reports {t}",
        }
        for t in ("MemoryPressure", "DiskPressure", "PIDPressure", "Ready")
    ]
    images = [
        {
            "names": [f"registry.example.com/team-{k % 7}/app-{k}@sha256:{k:064x}", f"registry.example.com/team-{k % 7}/app-{k}:v1.{k}"],
            "sizeBytes": 10**8 + k,
        }
        for k in range(50)
    ]
    fields = {f"f:{k}": {} for k in ("allocatable", "capacity", "conditions", "daemonEndpoints", "images", "nodeInfo")}
    node = {
        "metadata": {
            "name": f"node-{i}",
            "uid": f"{i:032x}",
            "resourceVersion": str(10**6 + i),
            "creationTimestamp": stamp,
            "labels": {**{f"node.kubernetes.io/l{k}": f"v{k}" for k in range(12)}, "kubernetes.io/hostname": f"node-{i}"},
            "annotations": {"node.alpha.kubernetes.io/ttl": "0", "volumes.kubernetes.io/controller-managed-attach-detach": "true"},
            "managedFields": [
                {
                    "manager": "kubelet",
                    "operation": "Update",
                    "subresource": "status",
                    "time": stamp,
                    "fieldsType": "FieldsV1",
                    "fieldsV1": {"f:status": fields},
                },
                {
                    "manager": "kube-controller-manager",
                    "operation": "Update",
                    "time": stamp,
                    "fieldsType": "FieldsV1",
                    "fieldsV1": {"f:spec": {"f:podCIDR": {}, "f:podCIDRs": {}}},
                },
            ],
        },
        "spec": {"podCIDR": f"10.{i // 256 % 256}.{i % 256}.0/24", "providerID": f"aws:///zone/i-{i:017x}"},
        "status": {
            "capacity": {"cpu": "96", "memory": "1056000000Ki", "nvidia.com/gpu": "8", "pods": "110", "ephemeral-storage": "3000000000Ki"},
            "allocatable": {
                "cpu": "95500m",
                "memory": "1050000000Ki",
                "nvidia.com/gpu": "8",
                "pods": "110",
                "ephemeral-storage": "2700000000Ki",
            },
            "conditions": conditions,
            "addresses": [
                {"type": "InternalIP", "address": f"10.1.{i // 256 % 256}.{i % 256}"},
                {"type": "Hostname", "address": f"node-{i}"},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "machineID": f"{i:032x}",
                "systemUUID": f"{i:032x}",
                "bootID": f"{i:032x}",
                "kernelVersion": "6.8.0",
                "osImage": "Ubuntu 24.04",
                "containerRuntimeVersion": "containerd://2.0.0",
                "kubeletVersion": "v1.34.0",
                "operatingSystem": "linux",
                "architecture": "amd64",
            },
            "images": images,
        },
    }
    return json.dumps(node)


def traced_mib(make: Callable[[], Any]) -> float:
    """The memory what ``make`` returns holds, in MiB."""
    tracemalloc.start()
    kept = make()
    size = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    del kept
    return round(size / 2**20, 1)


def run(n: int, repeats: int) -> dict[str, Any]:
    nodes = [f"node-{i}" for i in range(n)]
    exp, cap, append = full_buffer(nodes, len(FEATURE_NAMES))
    index = {name: i for i, name in enumerate(nodes)}
    step = 30.0
    window = 1_000_000.0 + step * np.arange(10)
    full_body, incremental_body = response(nodes, window), response(nodes, window[-3:])
    full, incremental = decode(full_body), decode(incremental_body)
    out = np.full((10, n), np.nan)
    history = " ".join(A.rfc3339(1.79e9 + 3600 * k) for k in range(5))
    annotations = [(history, A.rfc3339(1.79e9 + i)) for i in range(n)]

    def parse() -> None:
        for h, t in annotations:
            A.parse_history(h)
            A.parse_time(t)

    parse()  # the first interval fills the cache
    events = [kubelet_node(i) for i in range(n)]
    return {
        "nodes": n,
        "buffer_intervals": cap,
        "buffer_mib": round(exp.values.nbytes / 2**20, 1),
        "append_ms": median_ms(append, repeats),
        "decode_incremental_ms": median_ms(lambda: decode(incremental_body), repeats),
        "decode_incremental_stdlib_json_ms": median_ms(lambda: json.loads(incremental_body), repeats),
        "fill_full_window_ms": median_ms(lambda: fill(out, full, index, window, step, "node"), repeats),
        "fill_incremental_ms": median_ms(lambda: fill(out[-3:], incremental, index, window[-3:], step, "node"), repeats),
        "parse_annotations_ms": median_ms(parse, repeats),
        "node_cache_whole_mib": traced_mib(lambda: [json.loads(e) for e in events]),
        "node_cache_kept_mib": traced_mib(lambda: [slim_node(json.loads(e)) for e in events]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", default="500,5000", help="node counts, comma-separated")
    parser.add_argument("--repeats", type=int, default=20, help="calls per figure (median)")
    args = parser.parse_args()
    rows = []
    for n in (int(x) for x in args.nodes.split(",")):
        rows.append(run(n, args.repeats))
        print(rows[-1], flush=True)
    host = machine()
    command = f".venv/bin/python bench/interval_parts.py --nodes {args.nodes} --repeats {args.repeats}"
    md = [
        "| nodes | buffer (intervals, MiB) | append one interval (ms) | decode, incremental 3: msgspec / stdlib json (ms) | "
        "fill, full window of 10 (ms) | fill, incremental 3 (ms) | parse annotations (ms) | node cache, whole / kept (MiB) |",
        "|---|---|---|---|---|---|---|---|",
        *(
            f"| {r['nodes']} | {r['buffer_intervals']}, {r['buffer_mib']:.0f} | {r['append_ms']:.2f} | "
            f"{r['decode_incremental_ms']:.1f} / {r['decode_incremental_stdlib_json_ms']:.1f} | {r['fill_full_window_ms']:.1f} | "
            f"{r['fill_incremental_ms']:.1f} | {r['parse_annotations_ms']:.2f} | "
            f"{r['node_cache_whole_mib']:.0f} / {r['node_cache_kept_mib']:.0f} |"
            for r in rows
        ),
        "",
        f"Measured on a {host['cpus']}-core machine, Python {host['python']}. "
        f"Medians of {args.repeats} calls, one feature per decode and fill (values as Prometheus writes them, strings; "
        "decode: operator/prometheus_range.py, against the standard library's json that prometheus-api-client uses), "
        f"the buffer at its cap ({BUFFER_BYTES // 2**20} MiB of "
        f"features at most). Node cache: nodes shaped as a real kubelet reports them (50 images, "
        f"addresses, nodeInfo, managedFields), decoded as the watch delivers them, whole or as the node informer keeps them "
        f"(tracemalloc). Command: `{command}`",
    ]
    write("interval_parts", {"rows": rows, "command": command}, "\n".join(md))


if __name__ == "__main__":
    main()
