"""What the operator's ServiceAccount may do to pods, against the real API server.

deploy/base grants no pod write. With the opt-in RoleBinding in one namespace
(deploy/optional/checkpointing-rolebinding.yaml), the operator may annotate pods there and
only there, and deploy/base/admission-policy.yaml limits even those writes to ftmoe.io/
annotations: no image, label, owner or finalizer change. Deleting pods needs the
force-drain binding, which is not applied here.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from ftmoe.cluster.operator_access import REPO, apply_operator_manifests, service_account_kubeconfig
from ftmoe.operator.kube import CHECKPOINTING_ROLE, FORCE_DRAIN_ROLE, Forbidden, Kube

pytestmark = pytest.mark.cluster


def bare_pod(core: client.CoreV1Api, namespace: str) -> str:
    name = f"p-{uuid.uuid4().hex[:6]}"
    core.create_namespaced_pod(
        namespace,
        {
            "metadata": {"name": name, "labels": {"app": "x"}, "annotations": {"team": "a"}},
            "spec": {"containers": [{"name": "c", "image": "registry.invalid/app:1"}]},
        },
    )
    return name


def wait_until_enforced(as_operator: client.CoreV1Api, namespace: str, pod: str, timeout: float = 60.0) -> None:
    """The API server compiles admission policies in a loop that refreshes about once a
    second, so a policy applied a moment ago may not judge the next request yet. Probe it
    with a server-side dry run of a write it must refuse."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            as_operator.patch_namespaced_pod(pod, namespace, {"metadata": {"labels": {"app": "probe"}}}, dry_run="All")
        except ApiException as err:
            if err.status in (403, 422):
                return
            raise
        if time.monotonic() > deadline:
            pytest.fail(f"the admission policy ftmoe-operator-pod-writes did not refuse a label patch within {timeout:.0f} s")
        time.sleep(0.2)


@pytest.fixture()
def two_namespaces(api_client: Any) -> Iterator[tuple[str, str]]:
    core = client.CoreV1Api(api_client)
    names = [f"lp-{uuid.uuid4().hex[:6]}" for _ in range(2)]
    for n in names:
        core.create_namespace({"metadata": {"name": n}})
    yield names[0], names[1]
    for n in names:
        core.delete_namespace(n)


@pytest.fixture()
def operator_api(cluster_kubeconfig: Path, kubectl: Any, tmp_path: Path) -> client.ApiClient:
    apply_operator_manifests(kubectl)
    sa = service_account_kubeconfig(kubectl, cluster_kubeconfig, tmp_path / "sa.kubeconfig", duration="1h")
    return config.new_client_from_config(str(sa))


def test_the_operator_annotates_pods_only_where_bound_and_only_ftmoe_annotations(
    api_client: Any, kubectl: Any, operator_api: client.ApiClient, two_namespaces: tuple[str, str]
) -> None:
    bound, unbound = two_namespaces
    binding = yaml.safe_load((REPO / "deploy" / "optional" / "checkpointing-rolebinding.yaml").read_text())
    binding["metadata"]["namespace"] = bound
    kubectl("apply", "-f", "-", input=yaml.safe_dump(binding))
    admin = client.CoreV1Api(api_client)
    here, there = bare_pod(admin, bound), bare_pod(admin, unbound)
    as_operator = client.CoreV1Api(operator_api)
    wait_until_enforced(as_operator, bound, here)

    def refused(namespace: str, pod: str, patch: dict[str, Any]) -> int:
        try:
            as_operator.patch_namespaced_pod(pod, namespace, patch)
        except ApiException as err:
            return int(err.status)
        return 0

    # The checkpoint contract's write works where the admin bound the role ...
    kube = Kube(operator_api)
    kube.patch_pod(bound, here, {"metadata": {"annotations": {"ftmoe.io/checkpoint-request": "1"}}})
    assert admin.read_namespaced_pod(here, bound).metadata.annotations["ftmoe.io/checkpoint-request"] == "1"
    # ... and nothing else does, even there (the admission policy) ...
    assert refused(bound, here, {"metadata": {"labels": {"app": "hijacked"}}}) in (403, 422)
    assert refused(bound, here, {"metadata": {"annotations": {"team": "b"}}}) in (403, 422)
    assert refused(bound, here, {"metadata": {"finalizers": ["x/y"]}}) in (403, 422)
    assert refused(bound, here, {"spec": {"containers": [{"name": "c", "image": "registry.invalid/evil:1"}]}}) in (403, 422)
    pod = admin.read_namespaced_pod(here, bound)
    assert pod.metadata.labels == {"app": "x"} and pod.spec.containers[0].image == "registry.invalid/app:1"
    # ... and in a namespace without the binding, not even that, with an error that says what to bind.
    assert refused(unbound, there, {"metadata": {"annotations": {"ftmoe.io/checkpoint-request": "1"}}}) == 403
    with pytest.raises(Forbidden, match=CHECKPOINTING_ROLE):
        kube.patch_pod(unbound, there, {"metadata": {"annotations": {"ftmoe.io/checkpoint-request": "1"}}})
    # Deleting pods (drain.force) needs its own binding, not applied here.
    with pytest.raises(Forbidden, match=FORCE_DRAIN_ROLE):
        kube.delete_pod(bound, here, 0)
    assert admin.read_namespaced_pod(here, bound).metadata.deletion_timestamp is None
