"""The few Kubernetes API calls the operator makes, as plain dicts in and out.

Synchronous (the official client); the loop calls them off the event loop. Every verb
used here is listed in deploy/base/rbac.yaml and nowhere else.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any, TypeVar

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from ftmoe.operator.credentials import CredentialError
from ftmoe.operator.ownership import FIELD_MANAGER
from ftmoe.operator.policy import GROUP, POLICY_PLURAL, PREDICTION_PLURAL, VERSION

T = TypeVar("T")
EVICTED, BLOCKED, GONE = "evicted", "blocked", "gone"
# Opt-in ClusterRoles (deploy/base/rbac.yaml), bound by the admin where wanted.
CHECKPOINTING_ROLE = "ftmoe-operator-checkpointing"  # pods: patch, per training namespace
FORCE_DRAIN_ROLE = "ftmoe-operator-force-drain"  # pods: delete, cluster-wide


class NotLeader(Exception):
    """This replica no longer holds the leader Lease: the write was not sent."""


class Forbidden(Exception):
    """The operator's ServiceAccount may not do this; the message names the binding that grants it."""


def retry_conflicts(fn: Callable[[], T], attempts: int = 5) -> T:
    """Retry on 409 Conflict and on 5xx/429 throttling from the API server itself."""
    for attempt in range(attempts):
        try:
            return fn()
        except ApiException as err:
            if err.status not in (409, 500, 503, 504) or attempt == attempts - 1:
                raise
            time.sleep(0.2 * 2**attempt)
    raise AssertionError("unreachable")


class Kube:
    """``may_write`` is asked before every write (the leader Lease, operator/leader.py): a
    replica frozen past its Lease stops at the next write, not at the next interval."""

    def __init__(self, api: client.ApiClient, may_write: Callable[[], bool] | None = None):
        self.api = api
        self.core = client.CoreV1Api(api)
        self.custom = client.CustomObjectsApi(api)
        self.may_write = may_write

    def _writing(self, what: str) -> None:
        if self.may_write is not None and not self.may_write():
            raise NotLeader(f"not the leader any more; did not {what}")

    def _raw(self, method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        resp = method(*args, _preload_content=False, **kwargs)
        return json.loads(resp.data)

    # -- nodes and pods ---------------------------------------------------------------------

    def list_nodes(self) -> list[dict[str, Any]]:
        return self._raw(self.core.list_node)["items"]

    def patch_node(self, name: str, patch: dict[str, Any]) -> None:
        self._writing(f"patch node {name}")
        retry_conflicts(lambda: self.core.patch_node(name, patch, field_manager=FIELD_MANAGER))

    def pods_on_node(self, node: str) -> list[dict[str, Any]]:
        return self._raw(self.core.list_pod_for_all_namespaces, field_selector=f"spec.nodeName={node}")["items"]

    def list_pods(self, label_selector: str = "") -> list[dict[str, Any]]:
        return self._raw(self.core.list_pod_for_all_namespaces, label_selector=label_selector)["items"]

    def patch_pod(self, namespace: str, name: str, patch: dict[str, Any]) -> None:
        self._writing(f"patch pod {namespace}/{name}")
        try:
            retry_conflicts(lambda: self.core.patch_namespaced_pod(name, namespace, patch))
        except ApiException as err:
            if err.status == 403:
                raise Forbidden(
                    f"the operator may not annotate pods in namespace {namespace}: bind ClusterRole {CHECKPOINTING_ROLE} "
                    f"there (deploy/optional/checkpointing-rolebinding.yaml)"
                ) from err
            raise

    def evict(self, namespace: str, name: str, grace_period_seconds: int) -> tuple[str, str]:
        """Evict through the Eviction API: (EVICTED | BLOCKED | GONE, detail). BLOCKED is
        the API server's 429, a PodDisruptionBudget saying not now."""
        self._writing(f"evict pod {namespace}/{name}")
        options = client.V1DeleteOptions(grace_period_seconds=grace_period_seconds) if grace_period_seconds >= 0 else None
        body = client.V1Eviction(metadata=client.V1ObjectMeta(name=name, namespace=namespace), delete_options=options)
        try:
            self.core.create_namespaced_pod_eviction(name, namespace, body)
            return EVICTED, ""
        except ApiException as err:
            if err.status == 429:
                return BLOCKED, api_message(err)
            if err.status == 404:
                return GONE, ""
            raise

    def delete_pod(self, namespace: str, name: str, grace_period_seconds: int) -> None:
        self._writing(f"delete pod {namespace}/{name}")
        try:
            self.core.delete_namespaced_pod(
                name, namespace, grace_period_seconds=grace_period_seconds if grace_period_seconds >= 0 else None
            )
        except ApiException as err:
            if err.status == 403:
                raise Forbidden(
                    f"the operator may not delete pods in namespace {namespace}: drain.force needs ClusterRole "
                    f"{FORCE_DRAIN_ROLE} bound to it (deploy/optional/force-drain.yaml)"
                ) from err
            if err.status != 404:
                raise

    def read_config_map(self, namespace: str, name: str) -> dict[str, Any]:
        return self._raw(self.core.read_namespaced_config_map, name, namespace)

    def read_secret(self, namespace: str, name: str) -> dict[str, Any]:
        """A Secret in the operator's namespace; ``CredentialError`` when it cannot be read."""
        try:
            return self._raw(self.core.read_namespaced_secret, name, namespace)
        except ApiException as err:
            if err.status in (403, 404):
                where = "found" if err.status == 404 else "readable by the operator"
                raise CredentialError(f"Secret {namespace}/{name} (spec.prometheus.bearerTokenSecret) is not {where}") from err
            raise

    # -- our resources ---------------------------------------------------------------------

    def patch_policy_status(self, name: str, status: dict[str, Any]) -> None:
        self._writing(f"write the status of policy {name}")
        retry_conflicts(lambda: self.custom.patch_cluster_custom_object_status(GROUP, VERSION, POLICY_PLURAL, name, {"status": status}))

    def list_policies(self) -> list[dict[str, Any]]:
        return self._raw(self.custom.list_cluster_custom_object, GROUP, VERSION, POLICY_PLURAL)["items"]

    def list_predictions(self, policy: str) -> list[dict[str, Any]]:
        return self._raw(
            self.custom.list_cluster_custom_object, GROUP, VERSION, PREDICTION_PLURAL, label_selector=f"ftmoe.io/policy={policy}"
        )["items"]

    def upsert_prediction(self, body: dict[str, Any]) -> None:
        self._writing(f"write NodeFaultPrediction {body['metadata']['name']}")
        name = body["metadata"]["name"]

        def write() -> None:
            try:
                self.custom.patch_cluster_custom_object(GROUP, VERSION, PREDICTION_PLURAL, name, body)
            except ApiException as err:
                if err.status != 404:
                    raise
                self.custom.create_cluster_custom_object(GROUP, VERSION, PREDICTION_PLURAL, body)

        retry_conflicts(write)

    def delete_prediction(self, name: str) -> None:
        self._writing(f"delete NodeFaultPrediction {name}")
        try:
            self.custom.delete_cluster_custom_object(GROUP, VERSION, PREDICTION_PLURAL, name)
        except ApiException as err:
            if err.status != 404:
                raise


def api_message(err: ApiException) -> str:
    try:
        return str(json.loads(err.body or "").get("message", err.reason))
    except (TypeError, ValueError):
        return str(err.reason)
