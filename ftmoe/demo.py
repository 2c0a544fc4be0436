"""`make demo`: the whole story on the local cluster, step by step.

A local Kubernetes cluster (real control plane, kwok nodes) with a 32-replica workload;
the simulator's live mode serving node metrics to Prometheus; the operator running as its
own ServiceAccount; a FaultTolerancePolicy in Evict mode; then a memory leak injected on
node-3. The demo follows the node's NodeFaultPrediction as its risk rises, the cordon,
the evictions and the rescheduling by the real scheduler, and the uncordon after
recovery, and prints the kubectl command that shows each step. Everything keeps running
afterwards for you to explore; `ftmoe cluster down` stops it all.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ftmoe.cluster import ClusterError, processes, waiting
from ftmoe.cluster.local import LocalCluster, http_ok
from ftmoe.cluster.operator_access import REPO, apply_operator_manifests, service_account_kubeconfig
from ftmoe.cluster.progress import Progress

SIM_PORT, METRICS_PORT, HEALTH_PORT = 9105, 18080, 18081
POLICY = REPO / "deploy" / "examples" / "local-cluster.yaml"
FAULT_NODE = "node-3"
WORKLOAD = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web", "namespace": "demo", "labels": {"app": "web"}},
    "spec": {
        "replicas": 32,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {
                # Two replicas per node, and the spread ignores cordoned nodes when they are evicted.
                "topologySpreadConstraints": [
                    {
                        "maxSkew": 1,
                        "topologyKey": "kubernetes.io/hostname",
                        "whenUnsatisfiable": "DoNotSchedule",
                        "nodeTaintsPolicy": "Honor",
                        "labelSelector": {"matchLabels": {"app": "web"}},
                    }
                ],
                "containers": [
                    {"name": "web", "image": "registry.invalid/web:1", "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}}}
                ],
            },
        },
    },
}

K = "ftmoe cluster kubectl"  # what the user types; the same as kubectl with the cluster's kubeconfig
VENV = Path(sys.executable).parent.parent  # the venv `make demo` installed into


def wait_for(fn: Callable[[], Any], timeout: float, what: str, every: float = 1.0) -> Any:
    return waiting.wait_for(fn, timeout, what, every, error=ClusterError)


class Story:
    def __init__(self, cluster: LocalCluster):
        self.cluster = cluster
        self.ftmoe = str(Path(sys.executable).parent / "ftmoe")

    def kubectl(self, *args: str, **kw: Any) -> Any:
        return self.cluster.kubectl(*args, **kw)

    def json(self, *args: str) -> Any:
        return json.loads(self.kubectl(*args, "-o", "json").stdout)

    def show(self, command: str) -> None:
        """Print a kubectl command and what it prints now."""
        print(f"\n$ {K} {command}")
        print(self.kubectl(*command.split()).stdout.rstrip())

    def setup(self, progress: Progress) -> None:
        with progress.step("operator CRDs, namespace and RBAC (deploy/base)"):
            apply_operator_manifests(self.kubectl)
        with progress.step("workload: Deployment demo/web, 32 replicas, two per node"):
            self.kubectl("create", "namespace", "demo", check=False)
            self.kubectl("apply", "-f", "-", input=json.dumps(WORKLOAD))
            self.kubectl("-n", "demo", "rollout", "status", "deployment/web", "--timeout=180s", timeout=200)
        with progress.step(f"simulator live mode on :{SIM_PORT} (node metrics for Prometheus, no random faults)"):
            processes.start(
                self.cluster.processes_dir,
                "simulator",
                [self.ftmoe, "simulate", "serve", "--cluster", self.cluster.name, "--port", str(SIM_PORT), "--fault-rate", "0"],
            )
            progress.say("      waiting for Prometheus to scrape the simulated nodes (it rereads its targets every 5s) ...")
            wait_for(self.prometheus_has_nodes, 120, "the simulated node series in Prometheus")
            progress.say("      series are in; 30s more so each node has six intervals of history, the model's window ...")
            time.sleep(30)
        with progress.step("operator (ftmoe operator run, as ServiceAccount ftmoe-system/ftmoe-operator)"):
            kubeconfig = service_account_kubeconfig(self.kubectl, self.cluster.kubeconfig, self.cluster.state / "operator.kubeconfig")
            processes.start(
                self.cluster.processes_dir,
                "operator",
                [
                    self.ftmoe,
                    "operator",
                    "run",
                    "--kubeconfig",
                    str(kubeconfig),
                    "--metrics-port",
                    str(METRICS_PORT),
                    "--health-port",
                    str(HEALTH_PORT),
                    # In the cluster's state folder: `cluster down` removes it with the cluster, so a
                    # new demo never grades its alarms against an earlier cluster's faults.
                    "--state-dir",
                    str(self.cluster.state / "operator-state"),
                ],
            )
            # Prometheus scrapes the operator too, so ftmoe_node_risk has a history.
            (self.cluster.targets_dir / "ftmoe-operator.json").write_text(
                json.dumps([{"targets": [f"127.0.0.1:{METRICS_PORT}"], "labels": {"job": "ftmoe-operator"}}])
            )
            wait_for(lambda: http_ok(f"http://127.0.0.1:{HEALTH_PORT}/healthz"), 120, "the operator's liveness endpoint")
        with progress.step(f"FaultTolerancePolicy 'demo' ({POLICY.relative_to(REPO)}: mode Evict, interval 5s)"):
            self.kubectl("apply", "-f", str(POLICY))
            wait_for(self.policy_ready, 90, "the policy's first interval with Ready=True")

    def prometheus_has_nodes(self) -> bool:
        query = urllib.parse.urlencode({"query": "count(node_memory_MemTotal_bytes)"})
        try:
            with urllib.request.urlopen(f"{self.cluster.prometheus_url}/api/v1/query?{query}", timeout=5) as resp:
                result = json.load(resp)["data"]["result"]
        except OSError:
            return False
        return bool(result) and float(result[0]["value"][1]) >= 1

    def policy_ready(self) -> bool:
        status = self.json("get", "ftp", "demo").get("status") or {}
        return any(c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions", []))

    def node(self) -> dict[str, Any]:
        return self.json("get", "node", FAULT_NODE)

    def risk(self) -> float:
        nfp = self.json("get", "nfp", f"demo.{FAULT_NODE}")
        return float((nfp.get("status") or {}).get("risk") or 0.0)

    @staticmethod
    def phase() -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{SIM_PORT}/state", timeout=5) as resp:
            return str(json.load(resp)["nodes"][FAULT_NODE]["phase"])

    def pods_on(self, node: str) -> list[str]:
        pods = self.json("-n", "demo", "get", "pods", "--field-selector", f"spec.nodeName={node}")["items"]
        return [p["metadata"]["name"] for p in pods if not p["metadata"].get("deletionTimestamp")]

    def run(self) -> None:
        print("\n== 1. Predictions for every node: risk, likely fault type, and what the operator does about it")
        self.show("get ftp")
        self.show("get nfp")
        before = self.pods_on(FAULT_NODE)
        print(f"\n== 2. A memory leak starts on {FAULT_NODE} (pods there now: {', '.join(before)})")
        query = urllib.parse.urlencode({"fault": "memory-leak", "node": FAULT_NODE, "precursor": 4, "duration": 12})
        urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{SIM_PORT}/inject?{query}", method="POST"), timeout=10)
        print(f"   watch it: {K} get nfp -w     (or: {K} get nodes -L ftmoe.io/at-risk -L ftmoe.io/risk)")
        print(f"   in another shell, first: source {VENV}/bin/activate")
        last = -1.0
        deadline = time.monotonic() + 180
        while not self.node().get("spec", {}).get("unschedulable"):
            if time.monotonic() > deadline:
                raise ClusterError(f"{FAULT_NODE} was not cordoned within 180s; see {self.cluster.processes_dir}/operator.log")
            r = self.risk()
            if abs(r - last) >= 0.005:
                print(
                    f"   {time.strftime('%H:%M:%S')}  NodeFaultPrediction demo.{FAULT_NODE}: risk {r:.3f}"
                    f"   (simulator, ground truth: {self.phase()})"
                )
                last = r
            time.sleep(2)
        print(f"\n== 3. The operator cordoned {FAULT_NODE}; its annotations say who, why and when")
        self.show(f"get node {FAULT_NODE} -L ftmoe.io/at-risk")
        ann = self.node()["metadata"]["annotations"]
        for key in ("ftmoe.io/risk", "ftmoe.io/fault-type", "ftmoe.io/cordoned-by", "ftmoe.io/cordon-reason", "ftmoe.io/decision"):
            print(f"   {key}: {ann.get(key)}")
        print("\n== 4. Its pods are evicted (Eviction API) and the scheduler places them on healthy nodes")
        wait_for(lambda: not self.pods_on(FAULT_NODE), 120, f"no web pods on {FAULT_NODE}")
        self.kubectl("-n", "demo", "rollout", "status", "deployment/web", "--timeout=120s", timeout=150)
        self.show(f"get events --field-selector involvedObject.name={FAULT_NODE} --sort-by=.lastTimestamp")
        self.show("get nodes -L ftmoe.io/at-risk -L ftmoe.io/risk")
        self.show("-n demo get deployment web")
        print("\n== 5. The fault ends; after hysteresis.healthyFor (30s) of low risk the node is uncordoned")
        wait_for(lambda: not self.node().get("spec", {}).get("unschedulable"), 300, f"{FAULT_NODE} uncordoned", every=2)
        self.show("get ftp demo -o wide")
        self.show(f"get nfp demo.{FAULT_NODE} -o wide")
        print(
            "\nThe cluster, the simulator and the operator keep running. In a new shell, first:\n"
            f"  source {VENV}/bin/activate            # puts ftmoe on PATH\nthen try:"
        )
        for command, note in try_commands(self.cluster.kubeconfig, self.cluster.prometheus_url, self.cluster.processes_dir):
            print(f"  {command:<72} # {note}")


def try_commands(
    kubeconfig: Path,
    prometheus_url: str,
    logs: Path,
    policy: str = "demo",
    node: str = FAULT_NODE,
    sim_port: int = SIM_PORT,
    metrics_port: int = METRICS_PORT,
) -> list[tuple[str, str]]:
    """What the demo invites the user to run next (tests/operator/test_operator_e2e.py runs each one)."""
    return [
        (f"{K} explain faulttolerancepolicy.spec", "the API, field by field"),
        (f"{K} get ftp {policy} -o yaml", "conditions, counts, recent actions"),
        (f"{K} describe node {node}", "the node's annotations and the operator's events"),
        (f"{K} get nfp --sort-by=.status.risk", "one line per node, riskiest last"),
        (f"{K} get nfp -w", "the prediction dashboard (Ctrl-C to stop)"),
        (f"KUBECONFIG={kubeconfig} ftmoe operator report {policy}", "its alarms vs outcomes"),
        (f"curl -X POST 'http://127.0.0.1:{sim_port}/inject?fault=disk-filling&node=node-7'", "another fault"),
        (f"curl -s http://127.0.0.1:{metrics_port}/metrics | grep ^ftmoe_", "the operator's metrics"),
        ("ftmoe cluster status", "components, nodes, the demo's operator and simulator"),
        (f"tail {logs}/operator.log", f"logs (also simulator.log); Prometheus: {prometheus_url}/graph?g0.expr=ftmoe_node_risk"),
        ("ftmoe cluster down", "stop everything"),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.parse_args(argv)
    cluster = LocalCluster()
    try:
        cluster.up()
        story = Story(cluster)
        story.setup(Progress(total=5))
        story.run()
    except ClusterError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
