"""Proof that the local cluster is a real one: scheduler, controllers, eviction, PDBs, RBAC, CRDs.

These run against the local cluster (started once per session) or FTMOE_KUBECONFIG.
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

pytestmark = pytest.mark.cluster

APP = "web"


def wait_for(predicate: Callable[[], Any], timeout: float = 90, every: float = 0.5, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(every)


def deployment(name: str, replicas: int) -> client.V1Deployment:
    labels = {"app": name}
    container = client.V1Container(
        name="app",
        image="registry.invalid/never-pulled:1",  # kwok never pulls images
        resources=client.V1ResourceRequirements(requests={"cpu": "10m", "memory": "16Mi"}),
    )
    return client.V1Deployment(
        metadata=client.V1ObjectMeta(name=name, labels=labels),
        spec=client.V1DeploymentSpec(
            replicas=replicas,
            selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels),
                spec=client.V1PodSpec(containers=[container], termination_grace_period_seconds=0),
            ),
        ),
    )


def running_pods(core: client.CoreV1Api, namespace: str, app: str = APP) -> list[client.V1Pod]:
    pods = core.list_namespaced_pod(namespace, label_selector=f"app={app}").items
    return [p for p in pods if p.status.phase == "Running" and p.metadata.deletion_timestamp is None]


def wait_running(core: client.CoreV1Api, namespace: str, count: int) -> list[client.V1Pod]:
    def enough() -> list[client.V1Pod]:
        pods = running_pods(core, namespace)
        return pods if len(pods) == count else []

    return wait_for(enough, what=f"{count} Running pods")


def evict(core: client.CoreV1Api, pod: client.V1Pod) -> None:
    body = client.V1Eviction(metadata=client.V1ObjectMeta(name=pod.metadata.name, namespace=pod.metadata.namespace))
    core.create_namespaced_pod_eviction(pod.metadata.name, pod.metadata.namespace, body)


@pytest.fixture()
def core(api_client: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(api_client)


@pytest.fixture()
def apps(api_client: client.ApiClient) -> client.AppsV1Api:
    return client.AppsV1Api(api_client)


def test_sixteen_ready_nodes(core: client.CoreV1Api) -> None:
    nodes = core.list_node().items
    ready = [n.metadata.name for n in nodes if any(c.type == "Ready" and c.status == "True" for c in n.status.conditions or [])]
    assert len(ready) >= 16
    memory = sorted(n.status.capacity["memory"] for n in nodes if n.metadata.name in ready)
    assert {"4Gi", "8Gi"} <= set(memory)


def test_scheduler_places_twenty_replicas_on_fake_nodes(core: client.CoreV1Api, apps: client.AppsV1Api, namespace: str) -> None:
    apps.create_namespaced_deployment(namespace, deployment(APP, 20))
    pods = wait_running(core, namespace, 20)
    fake = {n.metadata.name for n in core.list_node().items if (n.metadata.annotations or {}).get("kwok.x-k8s.io/node") == "fake"}
    placed = {p.spec.node_name for p in pods}
    assert placed <= fake
    # The real scheduler spreads replicas; a mock that put them all on one node would fail.
    assert len(placed) > 1


def test_cordon_and_evict_reschedules_elsewhere(core: client.CoreV1Api, apps: client.AppsV1Api, namespace: str) -> None:
    apps.create_namespaced_deployment(namespace, deployment(APP, 4))
    pods = wait_running(core, namespace, 4)
    victim = pods[0]
    node = victim.spec.node_name
    core.patch_node(node, {"spec": {"unschedulable": True}})
    try:
        evict(core, victim)

        def replacement() -> list[client.V1Pod]:
            now = running_pods(core, namespace)
            names = {p.metadata.name for p in now}
            fresh = [p for p in now if p.metadata.name not in {q.metadata.name for q in pods}]
            return fresh if len(now) == 4 and victim.metadata.name not in names else []

        (new_pod,) = wait_for(replacement, what="the replacement pod")
        assert new_pod.spec.node_name != node
    finally:
        core.patch_node(node, {"spec": {"unschedulable": False}})


def test_pdb_blocks_eviction_with_429(core: client.CoreV1Api, apps: client.AppsV1Api, api_client: client.ApiClient, namespace: str) -> None:
    apps.create_namespaced_deployment(namespace, deployment(APP, 2))
    pods = wait_running(core, namespace, 2)
    policy = client.PolicyV1Api(api_client)
    policy.create_namespaced_pod_disruption_budget(
        namespace,
        client.V1PodDisruptionBudget(
            metadata=client.V1ObjectMeta(name="web"),
            spec=client.V1PodDisruptionBudgetSpec(min_available=2, selector=client.V1LabelSelector(match_labels={"app": APP})),
        ),
    )
    # The disruption controller must observe the pods before the budget is enforced.
    wait_for(
        lambda: (s := policy.read_namespaced_pod_disruption_budget_status("web", namespace).status) and s.expected_pods == 2,
        what="the PDB status",
    )
    with pytest.raises(ApiException) as err:
        evict(core, pods[0])
    assert err.value.status == 429
    assert "disruption budget" in err.value.body


def test_rbac_denies_a_service_account_without_bindings(core: client.CoreV1Api, api_client: client.ApiClient, namespace: str) -> None:
    core.create_namespaced_service_account(namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="nobody")))
    token = core.create_namespaced_service_account_token(
        "nobody", namespace, client.AuthenticationV1TokenRequest(spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=600))
    ).status.token
    config = client.Configuration()
    config.host = api_client.configuration.host
    config.ssl_ca_cert = api_client.configuration.ssl_ca_cert
    config.api_key = {"authorization": f"Bearer {token}"}
    restricted = client.CoreV1Api(client.ApiClient(config))
    with pytest.raises(ApiException) as err:
        restricted.list_namespaced_pod(namespace)
    assert err.value.status == 403
    assert f"system:serviceaccount:{namespace}:nobody" in err.value.body
    # The same identity is authenticated (not 401): RBAC, not authn, said no.
    review = client.AuthorizationV1Api(api_client).create_subject_access_review(
        client.V1SubjectAccessReview(
            spec=client.V1SubjectAccessReviewSpec(
                user=f"system:serviceaccount:{namespace}:nobody",
                resource_attributes=client.V1ResourceAttributes(namespace=namespace, verb="list", resource="pods"),
            )
        )
    )
    assert review.status.allowed is False


def test_crd_schema_rejects_invalid_object(api_client: client.ApiClient) -> None:
    ext = client.ApiextensionsV1Api(api_client)
    group, plural = "probe.ftmoe.io", "widgets"
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {
            "group": group,
            "scope": "Cluster",
            "names": {"plural": plural, "singular": "widget", "kind": "Widget"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": {
                                    "type": "object",
                                    "required": ["size"],
                                    "properties": {"size": {"type": "integer", "minimum": 1, "maximum": 10}},
                                }
                            },
                        }
                    },
                }
            ],
        },
    }
    try:
        ext.create_custom_resource_definition(crd)
    except ApiException as err:
        if err.status != 409:
            raise
    wait_for(
        lambda: any(
            c.type == "Established" and c.status == "True"
            for c in (ext.read_custom_resource_definition(f"{plural}.{group}").status.conditions or [])
        ),
        what="the CRD to be established",
    )
    custom = client.CustomObjectsApi(api_client)
    bad = {"apiVersion": f"{group}/v1", "kind": "Widget", "metadata": {"name": "too-big"}, "spec": {"size": 99}}
    with pytest.raises(ApiException) as err:
        custom.create_cluster_custom_object(group, "v1", plural, bad)
    assert err.value.status == 422
    assert "spec.size" in err.value.body and "less than or equal to 10" in err.value.body
    good = {"apiVersion": f"{group}/v1", "kind": "Widget", "metadata": {"name": "fine"}, "spec": {"size": 3}}
    try:
        created = custom.create_cluster_custom_object(group, "v1", plural, good)
        assert created["spec"]["size"] == 3
    finally:
        ext.delete_custom_resource_definition(f"{plural}.{group}")


local_only = pytest.mark.skipif(
    bool(os.environ.get("FTMOE_KUBECONFIG")), reason="checks the local cluster's own CLI; FTMOE_KUBECONFIG points elsewhere"
)


@local_only
def test_cli_kubectl_lists_sixteen_ready_nodes(cluster_kubeconfig: Path, local_cluster_name: str) -> None:
    ftmoe = Path(sys.executable).parent / "ftmoe"
    out = subprocess.run(
        [str(ftmoe), "cluster", "--name", local_cluster_name, "kubectl", "get", "nodes", "--no-headers"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert len(out) == 16
    assert all(line.split()[1] == "Ready" for line in out)


@local_only
def test_status_lists_components_and_the_background_processes_down_stops(local_cluster: Any, local_cluster_name: str) -> None:
    import json

    from ftmoe.cluster import processes

    ftmoe = Path(sys.executable).parent / "ftmoe"
    proc = processes.start(local_cluster.processes_dir, "sleeper", [sys.executable, "-c", "import time; time.sleep(120)", "ftmoe"])
    try:
        info = json.loads(
            subprocess.run(
                [str(ftmoe), "cluster", "--name", local_cluster_name, "status", "-o", "json"], capture_output=True, text=True, check=True
            ).stdout
        )
        assert "kube-apiserver" in info["components"] and isinstance(info["components"], list)
        assert {"name": "sleeper", "pid": proc.pid, "log": str(local_cluster.processes_dir / "sleeper.log")} in info["processes"]
        text = subprocess.run([str(ftmoe), "cluster", "--name", local_cluster_name, "status"], capture_output=True, text=True).stdout
        assert f"sleeper:     running, pid {proc.pid}" in text
    finally:
        proc.terminate()
        proc.wait(timeout=30)  # reaped here: a child of this process would linger as a zombie for stop()
        (local_cluster.processes_dir / "sleeper.pid").unlink(missing_ok=True)
    assert all(p["name"] != "sleeper" for p in processes.running(local_cluster.processes_dir))


@local_only
def test_second_build_reuses_the_cache(cluster_kubeconfig: Path) -> None:
    ftmoe = Path(sys.executable).parent / "ftmoe"
    proc = subprocess.run([str(ftmoe), "cluster", "build"], capture_output=True, text=True, check=True, timeout=60)
    assert proc.stderr.count("cached, reused") == 5, proc.stderr


@local_only
def test_up_on_a_running_cluster_brings_prometheus_scrape_jobs_up_to_date(local_cluster: Any) -> None:
    """A cluster started by an older release gets the current scrape jobs (here the 1 s job)
    without a restart: `up` rewrites prometheus.yml and asks Prometheus to reload."""
    import json
    import urllib.request

    import yaml

    from ftmoe.cluster.local import ClusterSettings
    from ftmoe.cluster.progress import Progress

    path = local_cluster.prometheus_dir / "prometheus.yml"
    current = yaml.safe_load(path.read_text())
    older = {**current, "scrape_configs": [j for j in current["scrape_configs"] if j["job_name"] != "ftmoe-targets-fast"]}
    path.write_text(yaml.safe_dump(older, sort_keys=False))
    urllib.request.urlopen(urllib.request.Request(local_cluster.prometheus_url + "/-/reload", method="POST"), timeout=10).close()

    def loaded_jobs() -> set[str]:
        with urllib.request.urlopen(local_cluster.prometheus_url + "/api/v1/status/config", timeout=10) as resp:
            return {j["job_name"] for j in yaml.safe_load(json.load(resp)["data"]["yaml"])["scrape_configs"]}

    assert "ftmoe-targets-fast" not in loaded_jobs()
    settings = json.loads(local_cluster.settings_file.read_text())
    out = io.StringIO()
    local_cluster.up(ClusterSettings(**settings), Progress(total=8, stream=out))  # the toolchain's 5 steps, then the cluster's 3
    steps = re.findall(r"^\[(\d)/8\]", out.getvalue(), flags=re.M)
    assert sorted(set(steps)) == [str(i) for i in range(1, 9)], f"every step numbered, none missing:\n{out.getvalue()}"
    assert "control plane: already running" in out.getvalue() and "is up" in out.getvalue()
    assert "ftmoe-targets-fast" in {j["job_name"] for j in yaml.safe_load(path.read_text())["scrape_configs"]}
    assert "ftmoe-targets-fast" in loaded_jobs()
