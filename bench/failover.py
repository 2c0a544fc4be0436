"""Fail-over of two operator replicas on the local cluster: the leader is SIGKILLed (no
Lease release, as an OOM kill or a node loss), and the follower takes over.

Two replicas run as the operator's ServiceAccount; a Cordon policy has cordoned a node
whose fault lasts the whole run. Each round kills whichever replica leads, measures

- Lease: from the kill to the follower holding the Lease (``ftmoe_leader`` 1 on it);
- first interval: from the kill to the follower's first finished interval of the policy;

then starts the killed replica again as the new follower. All along it checks what a
fail-over must not do: the cordon is never lost (the node stays cordoned, sampled every
0.2 s) and never repeated (one Cordoned event in all), and no uncordon happens.

    python bench/failover.py [--kills 5] [--lease-duration 15] [--lease-renew 5]
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import write  # noqa: E402

GROUP, VERSION, PLURAL = "ftmoe.io", "v1alpha1", "faulttolerancepolicies"
POLICY, NODES, STEP = "failover", ["node-0", "node-1"], 5
SIM_PORT, BASE_PORT = 29306, 28280


def metric(port: int, prefix: str, **labels: str) -> float | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as resp:
            text = resp.read().decode()
    except OSError:
        return None
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(prefix) and all(f'{k}="{v}"' in line for k, v in labels.items())
    )


def main() -> None:
    from kubernetes import client, config

    from ftmoe.cluster import processes, waiting
    from ftmoe.cluster.local import LocalCluster, http_ok
    from ftmoe.cluster.operator_access import apply_operator_manifests, service_account_kubeconfig

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cluster", default="ftmoe")
    p.add_argument("--kills", type=int, default=5)
    p.add_argument("--lease-duration", type=float, default=15.0)
    p.add_argument("--lease-renew", type=float, default=5.0)
    args = p.parse_args()
    cluster = LocalCluster(args.cluster)
    if not cluster.control_plane_running() or not cluster.prometheus_running():
        cluster.up()
    api = config.new_client_from_config(config_file=str(cluster.kubeconfig))
    core, custom = client.CoreV1Api(api), client.CustomObjectsApi(api)
    apply_operator_manifests(cluster.kubectl)
    if custom.list_cluster_custom_object(GROUP, VERSION, PLURAL)["items"]:
        raise SystemExit("other FaultTolerancePolicies exist; delete them (kubectl delete ftp --all) or use a fresh cluster")
    for name in ("simulator", "operator"):  # the demo's: same nodes, same Lease
        processes.stop(cluster.processes_dir, name)
    work = Path(tempfile.mkdtemp(prefix="ftmoe-failover-"))
    sa = service_account_kubeconfig(cluster.kubectl, cluster.kubeconfig, work / "sa.kubeconfig")
    ftmoe = str(Path(sys.executable).parent / "ftmoe")
    folder = cluster.processes_dir
    processes.start(
        folder,
        "failover-simulator",
        [ftmoe, "simulate", "serve", "--cluster", cluster.name, "--port", str(SIM_PORT), "--step-seconds", str(STEP), "--fault-rate", "0"],
    )

    def replica(i: int) -> None:
        metrics, health = BASE_PORT + 10 * i, BASE_PORT + 10 * i + 1
        processes.start(
            folder,
            f"failover-operator-{i}",
            [ftmoe, "operator", "run", "--kubeconfig", str(sa), "--metrics-port", str(metrics), "--health-port", str(health)]
            + ["--state-dir", str(work / f"state-{i}"), "--lease-duration", f"{args.lease_duration:g}"]
            + ["--lease-renew", f"{args.lease_renew:g}"],
        )
        waiting.wait_for(lambda: http_ok(f"http://127.0.0.1:{health}/healthz"), 120, f"replica {i}'s liveness", error=RuntimeError)

    def leader() -> int | None:
        for i in (0, 1):
            if metric(BASE_PORT + 10 * i, "ftmoe_leader") == 1:
                return i
        return None

    began = time.time()

    def events(reason: str) -> int:
        """Events of this run (a cluster keeps an earlier run's for an hour)."""
        found = core.list_namespaced_event("default", field_selector=f"involvedObject.name={NODES[0]},reason={reason}").items
        stamp = [(e, e.last_timestamp or e.event_time or e.first_timestamp) for e in found]
        return sum(e.count or 1 for e, t in stamp if e.involved_object.kind == "Node" and t is not None and t.timestamp() >= began - 1)

    rounds: list[dict[str, Any]] = []
    lost: list[float] = []
    stop = threading.Event()
    try:
        for n in NODES:
            core.patch_node(n, {"spec": {"unschedulable": None}})
        time.sleep(6 * STEP)  # a model window of history
        replica(0)
        replica(1)
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "FaultTolerancePolicy",
            "metadata": {"name": POLICY},
            "spec": {
                "mode": "Cordon",
                "interval": f"{STEP}s",
                "horizon": "1m",
                "nodeSelector": {"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In", "values": NODES}]},
                "prometheus": {"url": cluster.prometheus_url, "rateWindow": "15s"},
                "hysteresis": {"riskFor": "5s", "healthyFor": "1h"},
                "stormBreaker": {"maxAtRisk": "100%"},
            },
        }
        custom.create_cluster_custom_object(GROUP, VERSION, PLURAL, body)
        query = urllib.parse.urlencode({"fault": "memory-leak", "node": NODES[0], "precursor": 2, "duration": 2000})
        urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{SIM_PORT}/inject?{query}", method="POST"), timeout=10)
        waiting.wait_for(lambda: core.read_node(NODES[0]).spec.unschedulable, 180, f"{NODES[0]} cordoned", error=RuntimeError)
        print(f"{NODES[0]} cordoned; killing the leader {args.kills} times", file=sys.stderr)

        def watch_cordon() -> None:
            while not stop.is_set():
                if not core.read_node(NODES[0]).spec.unschedulable:
                    lost.append(time.time())
                time.sleep(0.2)

        watcher = threading.Thread(target=watch_cordon, daemon=True)
        watcher.start()
        for k in range(args.kills):
            lead = waiting.wait_for(lambda: (i := leader()) is not None and (i,), 60, "a leader", error=RuntimeError)[0]
            follower = 1 - lead
            port = BASE_PORT + 10 * follower
            before = metric(port, "ftmoe_interval_duration_seconds_count", policy=POLICY) or 0.0
            assert before == 0.0, "a follower runs no interval"
            time.sleep(STEP * (k % 3) / 2)  # kill at different points of an interval
            pid = int((folder / f"failover-operator-{lead}.pid").read_text())
            killed = time.monotonic()
            os.kill(pid, signal.SIGKILL)
            (folder / f"failover-operator-{lead}.pid").unlink(missing_ok=True)
            lease = first = None
            while first is None and time.monotonic() - killed < 120:
                if lease is None and metric(port, "ftmoe_leader") == 1:
                    lease = time.monotonic() - killed
                if (metric(port, "ftmoe_interval_duration_seconds_count", policy=POLICY) or 0.0) > 0:
                    first = time.monotonic() - killed
                time.sleep(0.1)
            rounds.append({"killed": lead, "lease_seconds": lease, "first_interval_seconds": first})
            print(f"round {k + 1}: replica {lead} killed; Lease after {lease}s, first interval after {first}s", file=sys.stderr)
            replica(lead)  # back as the follower
        stop.set()
        watcher.join(timeout=5)
        cordoned, uncordons = events("Cordoned"), events("Uncordoned")
    finally:
        stop.set()
        try:
            custom.delete_cluster_custom_object(GROUP, VERSION, PLURAL, POLICY)
            waiting.wait_for(
                lambda: not custom.list_cluster_custom_object(GROUP, VERSION, PLURAL)["items"],
                90,
                "the policy released",
                error=RuntimeError,
            )
        finally:
            for name in ("failover-operator-0", "failover-operator-1", "failover-simulator"):
                processes.stop(folder, name)
    lease_s = [r["lease_seconds"] for r in rounds if r["lease_seconds"] is not None]
    first_s = [r["first_interval_seconds"] for r in rounds if r["first_interval_seconds"] is not None]
    summary = {
        "kills": len(rounds),
        "lease_median_seconds": round(statistics.median(lease_s), 1) if lease_s else None,
        "lease_max_seconds": round(max(lease_s), 1) if lease_s else None,
        "first_interval_median_seconds": round(statistics.median(first_s), 1) if first_s else None,
        "first_interval_max_seconds": round(max(first_s), 1) if first_s else None,
        "cordon_lost_samples": len(lost),
        "cordoned_events": cordoned,
        "uncordon_events": uncordons,
    }
    md = "\n".join(
        [
            f"Fail-over: leader SIGKILLed {summary['kills']} times, Lease {args.lease_duration:g}s / renew {args.lease_renew:g}s, "
            f"interval {STEP}s (2-core machine, local cluster)",
            "",
            "| measure | median | max |",
            "|---|---|---|",
            f"| kill -> follower holds the Lease | {summary['lease_median_seconds']} s | {summary['lease_max_seconds']} s |",
            "| kill -> follower's first interval | "
            f"{summary['first_interval_median_seconds']} s | {summary['first_interval_max_seconds']} s |",
            "",
            f"Cordon lost in {len(lost)} samples (every 0.2 s); Cordoned events {cordoned} (1 = never repeated); "
            f"Uncordoned events {uncordons}.",
            "",
            "`python bench/failover.py`",
        ]
    )
    write("failover", {"args": vars(args), "summary": summary, "rounds": rounds}, md)


if __name__ == "__main__":
    main()
