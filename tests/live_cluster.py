"""The live test environment shared by the end-to-end and chaos tests: the local cluster's
real API server and Prometheus, the simulator's live mode for metrics and faults, and the
operator as its own ServiceAccount under deploy/base's ClusterRole (so every call it makes
passes real RBAC). Test modules import ``env`` (a module-scoped fixture: pytest's package
scope needs an __init__.py, which tests/operator cannot have without shadowing the standard
library's ``operator``) and the helpers."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from ftmoe.cluster import waiting
from ftmoe.cluster.local import http_ok
from ftmoe.cluster.operator_access import apply_operator_manifests, service_account_kubeconfig

FTMOE = str(Path(sys.executable).parent / "ftmoe")
SIM_PORT, METRICS_PORT, HEALTH_PORT = 29106, 28080, 28081
STEP = 5  # the simulator's interval and the policies' interval, seconds (Prometheus scrapes every 5 s)


def event_time(event: Any) -> float:
    stamp = event.last_timestamp or event.event_time or event.first_timestamp
    return stamp.timestamp() if stamp is not None else 0.0


def wait_for(fn: Callable[[], Any], timeout: float, what: str, every: float = 1.0) -> Any:
    return waiting.wait_for(fn, timeout, what, every, error=AssertionError)


@dataclass
class Env:
    api: client.ApiClient
    kubectl: Callable[..., subprocess.CompletedProcess[str]]
    prometheus: str
    sa_kubeconfig: Path
    logs: Path
    cluster: Any = None  # the local cluster (its process ids, for the chaos tests)
    operator: subprocess.Popen[bytes] | None = None
    # the command line that runs the operator with these flags: the checkout's `ftmoe
    # operator run` here; tests/image runs the built image's entrypoint instead
    launch: Callable[[list[str]], list[str]] = lambda flags: [FTMOE, "operator", "run", *flags]

    @property
    def core(self) -> client.CoreV1Api:
        return client.CoreV1Api(self.api)

    @property
    def custom(self) -> client.CustomObjectsApi:
        return client.CustomObjectsApi(self.api)

    def start_operator(self) -> None:
        self.operator = self.spawn_operator()

    def spawn_operator(self, offset: int = 0) -> subprocess.Popen[bytes]:
        """An operator process as the ServiceAccount; ``offset`` moves its ports (a second replica)."""
        log = (self.logs / f"operator{offset or ''}.log").open("ab")
        flags = [
            "--kubeconfig",
            str(self.sa_kubeconfig),
            "--metrics-port",
            str(METRICS_PORT + offset),
            "--health-port",
            str(HEALTH_PORT + offset),
            "--state-dir",
            str(self.logs / "state"),
        ]
        proc = subprocess.Popen(self.launch(flags), stdout=log, stderr=subprocess.STDOUT)
        wait_for(lambda: http_ok(f"http://127.0.0.1:{HEALTH_PORT + offset}/healthz"), 90, "the operator's liveness endpoint")
        return proc

    def kill_operator(self) -> None:
        """SIGKILL: no cleanup, no Lease release, as a crash or an OOM kill."""
        if self.operator is not None:
            self.operator.kill()
            self.operator.wait(timeout=30)
            self.operator = None

    def stop_operator(self) -> None:
        if self.operator is not None:
            self.operator.terminate()
            self.operator.wait(timeout=60)
            self.operator = None

    def node(self, name: str) -> client.V1Node:
        return self.core.read_node(name)

    def node_events(self, name: str, reason: str, since: float = 0.0) -> list[client.CoreV1Event]:
        """Events on one node; ``since`` (epoch seconds) drops those of earlier tests (the chaos tests share the nodes)."""
        events = self.core.list_namespaced_event("default", field_selector=f"involvedObject.name={name},reason={reason}").items
        return [e for e in events if e.involved_object.kind == "Node" and event_time(e) >= since]

    def await_node_event(self, name: str, reason: str, since: float = 0.0, timeout: float = 30) -> list[client.CoreV1Event]:
        """Wait for an event the operator posts after the state a test has just seen (a patch,
        an eviction): the event is a second write, so reading it at once races it on a slow machine."""
        return wait_for(lambda: self.node_events(name, reason, since), timeout, f"a {reason} event on {name}")

    def policy_events(self, policy: str, reason: str) -> list[client.CoreV1Event]:
        """Events on one policy: unique to a test, even on a cluster kept across runs."""
        events = self.core.list_namespaced_event("default", field_selector=f"involvedObject.name={policy},reason={reason}").items
        return [e for e in events if e.involved_object.kind == "FaultTolerancePolicy"]

    def policy(self, name: str) -> dict[str, Any]:
        return self.custom.get_cluster_custom_object("ftmoe.io", "v1alpha1", "faulttolerancepolicies", name)

    def prediction(self, policy: str, node: str) -> dict[str, Any] | None:
        try:
            return self.custom.get_cluster_custom_object("ftmoe.io", "v1alpha1", "nodefaultpredictions", f"{policy}.{node}")
        except ApiException:
            return None


def inject(node: str, fault: str = "memory-leak", precursor: int = 2, duration: int = 14) -> None:
    query = urllib.parse.urlencode({"fault": fault, "node": node, "precursor": precursor, "duration": duration})
    urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{SIM_PORT}/inject?{query}", method="POST"), timeout=10)


@pytest.fixture(scope="module")
def env(
    operator_launch: Callable[[list[str]], list[str]] | None,
    local_cluster: Any,
    cluster_kubeconfig: Path,
    api_client: Any,
    kubectl: Any,
    local_cluster_name: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Env]:
    if local_cluster is None:
        pytest.skip("needs the local cluster's Prometheus for the simulator's metrics; FTMOE_KUBECONFIG points elsewhere")
    logs = tmp_path_factory.mktemp("operator-e2e")
    apply_operator_manifests(kubectl)
    sa = service_account_kubeconfig(kubectl, cluster_kubeconfig, logs / "sa.kubeconfig", duration="2h")
    sim = subprocess.Popen(
        [
            FTMOE,
            "simulate",
            "serve",
            "--cluster",
            local_cluster_name,
            "--port",
            str(SIM_PORT),
            "--step-seconds",
            str(STEP),
            "--fault-rate",
            "0",
        ],
        stdout=(logs / "simulator.log").open("ab"),
        stderr=subprocess.STDOUT,
    )
    (logs / "admin").write_text(cluster_kubeconfig.read_text())  # for `ftmoe operator report` as a user
    e = Env(api_client, kubectl, local_cluster.prometheus_url, sa, logs, local_cluster)
    if operator_launch is not None:
        e.launch = operator_launch
    try:
        query = urllib.parse.urlencode({"query": "count(node_memory_MemTotal_bytes)"})

        def series() -> bool:
            with urllib.request.urlopen(f"{e.prometheus}/api/v1/query?{query}", timeout=5) as resp:
                result = json.load(resp)["data"]["result"]
            return bool(result) and float(result[0]["value"][1]) >= 16

        wait_for(series, 90, "the simulator's node series in Prometheus")
        time.sleep(6 * STEP)  # a full model window of history
        e.start_operator()
        # Prometheus scrapes the operator too, as a user's would: the dashboard's queries are checked against it.
        scrape_target(local_cluster).write_text(
            json.dumps([{"targets": [f"127.0.0.1:{METRICS_PORT}"], "labels": {"job": "ftmoe-operator"}}])
        )
        yield e
    finally:
        scrape_target(local_cluster).unlink(missing_ok=True)
        leave_clean(e, sim)
        print(f"operator and simulator logs: {logs}")


def scrape_target(cluster: Any) -> Path:
    return Path(cluster.targets_dir) / "ftmoe-operator-e2e.json"


def leave_clean(env: Env, sim: subprocess.Popen[bytes]) -> None:
    """Hand the cluster to the next module as it was: policies deleted while the operator can
    still release their nodes, then the simulator stopped and its node conditions cleared."""
    try:
        for p in env.custom.list_cluster_custom_object("ftmoe.io", "v1alpha1", "faulttolerancepolicies")["items"]:
            # An earlier test's delete may finish (its finalizer released) between the list and this delete.
            delete_policy(env, p["metadata"]["name"], missing_ok=True)
        if env.operator is not None:
            wait_for(
                lambda: not env.custom.list_cluster_custom_object("ftmoe.io", "v1alpha1", "faulttolerancepolicies")["items"],
                60,
                "every policy released and gone",
            )
    finally:
        env.stop_operator()
        sim.terminate()
        sim.wait(timeout=30)

    def pressure() -> list[str]:
        return [
            n.metadata.name
            for n in env.core.list_node().items
            if any(c.type.endswith("Pressure") and c.status == "True" for c in n.status.conditions or [])
        ]

    wait_for(lambda: not pressure(), 60, "no node left under simulated pressure")


def reset_nodes(env: Env, nodes: list[str]) -> None:
    """Start from clean nodes: schedulable, no ftmoe.io annotations or labels (an earlier
    test, or an earlier run against a kept cluster, may have left a cordon behind)."""
    for n in nodes:
        meta = env.node(n).metadata
        ann = {k: None for k in (meta.annotations or {}) if k.startswith("ftmoe.io/")}
        labels = {k: None for k in (meta.labels or {}) if k.startswith("ftmoe.io/")}
        env.core.patch_node(n, {"spec": {"unschedulable": None}, "metadata": {"annotations": ann, "labels": labels}})


def apply_policy(env: Env, nodes: list[str], mode: str = "Evict", **spec: Any) -> str:
    reset_nodes(env, nodes)
    name = f"e2e-{uuid.uuid4().hex[:6]}"
    body = {
        "apiVersion": "ftmoe.io/v1alpha1",
        "kind": "FaultTolerancePolicy",
        "metadata": {"name": name},
        "spec": {
            "mode": mode,
            "interval": f"{STEP}s",
            "horizon": "1m",
            "nodeSelector": {"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In", "values": nodes}]},
            "prometheus": {"url": env.prometheus, "rateWindow": "15s"},
            "hysteresis": {"riskFor": "5s", "healthyFor": "20s"},
            "maxUnavailable": 1,
            "stormBreaker": {"maxAtRisk": "100%"},
            **spec,
        },
    }
    env.custom.create_cluster_custom_object("ftmoe.io", "v1alpha1", "faulttolerancepolicies", body)
    wait_for(lambda: (env.policy(name).get("status") or {}).get("lastRun"), 60, f"policy {name}'s first interval")
    return name


def delete_policy(env: Env, name: str, missing_ok: bool = False) -> None:
    try:
        env.custom.delete_cluster_custom_object("ftmoe.io", "v1alpha1", "faulttolerancepolicies", name)
    except ApiException as err:
        if not (missing_ok and err.status == 404):
            raise


def deployment(
    env: Env, namespace: str, name: str, replicas: int, nodes: list[str], pinned: bool = False, labels: dict[str, str] | None = None
) -> None:
    """``replicas`` pods spread over ``nodes`` (exactly even), or all on nodes[0] when pinned."""
    reset_nodes(env, nodes)
    affinity = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In", "values": nodes[:1] if pinned else nodes}]}
                ]
            }
        }
    }
    spread = [
        {
            "maxSkew": 1,
            "topologyKey": "kubernetes.io/hostname",
            "whenUnsatisfiable": "DoNotSchedule",
            "nodeTaintsPolicy": "Honor",
            "labelSelector": {"matchLabels": {"app": name}},
        }
    ]
    body = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name, **(labels or {})}},
                "spec": {
                    "affinity": affinity,
                    "topologySpreadConstraints": [] if pinned else spread,
                    "containers": [{"name": "c", "image": "registry.invalid/app:1"}],
                },
            },
        },
    }
    client.AppsV1Api(env.api).create_namespaced_deployment(namespace, body)
    wait_for(lambda: len(running(env, namespace, name)) == replicas, 90, f"{replicas} Running pods of {name}")


def running(env: Env, namespace: str, app: str) -> list[client.V1Pod]:
    pods = env.core.list_namespaced_pod(namespace, label_selector=f"app={app}").items
    return [p for p in pods if p.status.phase == "Running" and p.metadata.deletion_timestamp is None]


def own_metric(prefix: str, port: int = METRICS_PORT, **labels: str) -> float:
    """The sum of the operator's series starting with ``prefix`` that carry ``labels`` (0 when it is down)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
            text = resp.read().decode()
    except OSError:
        return 0.0
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(prefix) and all(f'{k}="{v}"' in line for k, v in labels.items())
    )


def kubectl_ftmoe(env: Env, *args: str) -> subprocess.CompletedProcess[str]:
    """``kubectl ftmoe ARGS`` as a user runs it: the cluster's kubectl finds the plugin
    (kubectl-ftmoe, installed with the package) on PATH and hands it $KUBECONFIG."""
    import os

    from ftmoe.cluster.toolchain import Toolchain

    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    environ = {**os.environ, "PATH": path, "KUBECONFIG": str(env.logs / "admin")}
    proc = subprocess.run(
        [str(Toolchain().binaries().kubectl), "ftmoe", *args], capture_output=True, text=True, env=environ, timeout=60, check=False
    )
    assert proc.returncode == 0, f"kubectl ftmoe {' '.join(args)}: {proc.stderr}"
    return proc


def side_by_side(scenarios: dict[str, Callable[[], None]]) -> None:
    """Run scenarios that own disjoint nodes at once: each waits on simulated faults, not on
    the CPU, so together they take about as long as the longest. A failure names its scenario."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=len(scenarios)) as pool:
        futures = {name: pool.submit(fn) for name, fn in scenarios.items()}
    failed = [f"{name}: {type(err).__name__}: {err}" for name, f in futures.items() if (err := f.exception()) is not None]
    assert not failed, "\n".join(failed)
