"""The few Kubernetes API calls the operator makes, as plain dicts in and out.

Synchronous (the official client); the loop calls them off the event loop. Every verb
used here is listed in deploy/base/rbac.yaml and nowhere else. Responses are read as JSON
(``_preload_content=False``): the client's model classes cost more than the request.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from ftmoe.operator.credentials import CredentialError
from ftmoe.operator.ownership import FIELD_MANAGER
from ftmoe.operator.policy import GROUP, POLICY_PLURAL, PREDICTION_PLURAL, VERSION
from ftmoe.operator.rate_limit import TokenBucket, with_retries
from ftmoe.operator.request_tally import count

EVICTED, BLOCKED, GONE = "evicted", "blocked", "gone"
# Opt-in ClusterRoles (deploy/base/rbac.yaml), bound by the admin where wanted.
CHECKPOINTING_ROLE = "ftmoe-operator-checkpointing"  # pods: patch, per training namespace
FORCE_DRAIN_ROLE = "ftmoe-operator-force-drain"  # pods: delete, cluster-wide
REMEDIATION_RBAC = "deploy/optional/remediation-rbac.yaml"  # templates: get; remediations: create, patch, delete
Obj = dict[str, Any]


class NotLeader(Exception):
    """This replica no longer holds the leader Lease: the write was not sent."""


class Forbidden(Exception):
    """The operator's ServiceAccount may not do this; the message names the binding that grants it."""


class NotFound(Exception):
    """The object, or its kind, is not in the cluster; the message says which."""


class Kube:
    """Every request is paced by ``throttle`` (operator/rate_limit.py), counted
    (operator/request_tally.py) and, unless it says otherwise, retried on 409, 429 (after
    Retry-After) and 5xx. ``may_write`` is asked before every write (the leader Lease,
    operator/leader.py): a replica frozen past its Lease stops at the next write, not at the
    next interval. ``wrote(resource, object)`` receives what each write returned, so the
    watch caches (operator/cluster_cache.py) see one's own writes at once."""

    def __init__(
        self,
        api: client.ApiClient,
        may_write: Callable[[], bool] | None = None,
        throttle: TokenBucket | None = None,
        wrote: Callable[[str, Obj], None] | None = None,
    ):
        self.api = api
        self.core = client.CoreV1Api(api)
        self.custom = client.CustomObjectsApi(api)
        self.may_write = may_write
        self.throttle = throttle if throttle is not None else TokenBucket(0)
        self.wrote = wrote
        self.plurals: dict[tuple[str, str], str] = {}  # (apiVersion, kind) -> resource, from discovery

    def _writing(self, what: str) -> None:
        if self.may_write is not None and not self.may_write():
            raise NotLeader(f"not the leader any more; did not {what}")

    def _call(self, verb: str, resource: str, fn: Callable[[], Any], retry: bool = True) -> Any:
        def once() -> Any:
            self.throttle.acquire()
            count(verb, resource)
            return fn()

        return with_retries(once) if retry else once()

    def _json(self, verb: str, resource: str, method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        resp = self._call(verb, resource, lambda: method(*args, _preload_content=False, **kwargs))
        return json.loads(resp.data) if resp.data else {}

    def _written(self, resource: str, obj: Obj) -> None:
        if self.wrote is not None and obj.get("metadata"):
            self.wrote(resource, obj)

    # -- nodes and pods ---------------------------------------------------------------------

    def list_nodes(self) -> list[Obj]:
        return self._json("list", "nodes", self.core.list_node)["items"]

    def patch_node(self, name: str, patch: Obj) -> None:
        self._writing(f"patch node {name}")
        self._written("nodes", self._json("patch", "nodes", self.core.patch_node, name, patch, field_manager=FIELD_MANAGER))

    def pods_on_node(self, node: str) -> list[Obj]:
        return self._json("list", "pods", self.core.list_pod_for_all_namespaces, field_selector=f"spec.nodeName={node}")["items"]

    def list_pods(self, label_selector: str = "") -> list[Obj]:
        return self._json("list", "pods", self.core.list_pod_for_all_namespaces, label_selector=label_selector)["items"]

    def patch_pod(self, namespace: str, name: str, patch: Obj) -> None:
        self._writing(f"patch pod {namespace}/{name}")
        try:
            self._written("pods", self._json("patch", "pods", self.core.patch_namespaced_pod, name, namespace, patch))
        except ApiException as err:
            if err.status == 403:
                raise Forbidden(
                    f"the operator may not annotate pods in namespace {namespace}: bind ClusterRole {CHECKPOINTING_ROLE} "
                    f"there (deploy/optional/checkpointing-rolebinding.yaml)"
                ) from err
            raise

    def evict(self, namespace: str, name: str, grace_period_seconds: int) -> tuple[str, str]:
        """Evict through the Eviction API: (EVICTED | BLOCKED | GONE, detail). BLOCKED is
        the API server's 429, a PodDisruptionBudget saying not now (not retried here: the
        drain asks again next interval)."""
        self._writing(f"evict pod {namespace}/{name}")
        options = client.V1DeleteOptions(grace_period_seconds=grace_period_seconds) if grace_period_seconds >= 0 else None
        body = client.V1Eviction(metadata=client.V1ObjectMeta(name=name, namespace=namespace), delete_options=options)
        try:
            self._call("create", "pods/eviction", lambda: self.core.create_namespaced_pod_eviction(name, namespace, body), retry=False)
            return EVICTED, ""
        except ApiException as err:
            if err.status == 429:
                return BLOCKED, api_message(err)
            if err.status == 404:
                return GONE, ""
            raise

    def delete_pod(self, namespace: str, name: str, grace_period_seconds: int) -> None:
        self._writing(f"delete pod {namespace}/{name}")
        grace = grace_period_seconds if grace_period_seconds >= 0 else None
        try:
            self._call("delete", "pods", lambda: self.core.delete_namespaced_pod(name, namespace, grace_period_seconds=grace))
        except ApiException as err:
            if err.status == 403:
                raise Forbidden(
                    f"the operator may not delete pods in namespace {namespace}: drain.force needs ClusterRole "
                    f"{FORCE_DRAIN_ROLE} bound to it (deploy/optional/force-drain.yaml)"
                ) from err
            if err.status != 404:
                raise

    def read_config_map(self, namespace: str, name: str) -> Obj:
        return self._json("get", "configmaps", self.core.read_namespaced_config_map, name, namespace)

    def read_secret(self, namespace: str, name: str) -> Obj:
        """A Secret in the operator's namespace; ``CredentialError`` when it cannot be read."""
        try:
            return self._json("get", "secrets", self.core.read_namespaced_secret, name, namespace)
        except ApiException as err:
            if err.status in (403, 404):
                where = "found" if err.status == 404 else "readable by the operator"
                raise CredentialError(f"Secret {namespace}/{name} (spec.prometheus.bearerTokenSecret) is not {where}") from err
            raise

    # -- remediation objects, of any kind (operator/remediation_objects.py) ----------------

    def plural(self, api_version: str, kind: str) -> str:
        """The resource name of a namespaced kind, from the API server's discovery (cached)."""
        key = (api_version, kind)
        if key not in self.plurals:
            try:
                group, version = api_version.split("/", 1)
                resp = self._call("get", "discovery", lambda: self.custom.get_api_resources(group, version, _preload_content=False))
            except ApiException as err:
                if err.status == 404:
                    raise NotFound(f"the API server serves no {api_version}: is the remediator (its CRDs) installed?") from err
                raise
            for r in json.loads(resp.data).get("resources", []):
                if "/" not in r["name"] and r.get("namespaced"):
                    self.plurals[(api_version, r["kind"])] = r["name"]
            if key not in self.plurals:
                raise NotFound(f"{api_version} has no namespaced kind {kind}: is the remediator (its CRDs) installed?")
        return self.plurals[key]

    def _object(self, verb: str, api_version: str, kind: str, call: Callable[[str, str, str], Any], what: str) -> Any:
        group, version = api_version.split("/", 1)
        plural = self.plural(api_version, kind)
        try:
            resp = self._call(verb, plural, lambda: call(group, version, plural), retry=verb != "create")  # a 409 on create is an answer
        except ApiException as err:
            if err.status == 403:
                raise Forbidden(f"the operator may not {verb} {what}: apply and adapt {REMEDIATION_RBAC}") from err
            if err.status == 404:
                raise NotFound(f"{what} not found") from err
            raise
        return json.loads(resp.data) if resp.data else {}

    def get_object(self, api_version: str, kind: str, namespace: str, name: str) -> Obj:
        what = f"{kind} {namespace}/{name}"
        return self._object(
            "get",
            api_version,
            kind,
            lambda g, v, p: self.custom.get_namespaced_custom_object(g, v, namespace, p, name, _preload_content=False),
            what,
        )

    def create_object(self, body: Obj) -> bool:
        """Create a namespaced object; False when one of that name is already there (created before a restart)."""
        meta = body["metadata"]
        self._writing(f"create {body['kind']} {meta['namespace']}/{meta['name']}")
        try:
            self._object(
                "create",
                body["apiVersion"],
                body["kind"],
                lambda g, v, p: self.custom.create_namespaced_custom_object(g, v, meta["namespace"], p, body, _preload_content=False),
                f"{body['kind']} {meta['namespace']}/{meta['name']}",
            )
        except ApiException as err:
            if err.status == 409:
                return False
            raise
        return True

    def patch_object(self, api_version: str, kind: str, namespace: str, name: str, patch: Obj) -> None:
        self._writing(f"patch {kind} {namespace}/{name}")
        self._object(
            "patch",
            api_version,
            kind,
            lambda g, v, p: self.custom.patch_namespaced_custom_object(g, v, namespace, p, name, patch, _preload_content=False),
            f"{kind} {namespace}/{name}",
        )

    def delete_object(self, api_version: str, kind: str, namespace: str, name: str) -> None:
        self._writing(f"delete {kind} {namespace}/{name}")
        try:
            self._object(
                "delete",
                api_version,
                kind,
                lambda g, v, p: self.custom.delete_namespaced_custom_object(g, v, namespace, p, name, _preload_content=False),
                f"{kind} {namespace}/{name}",
            )
        except NotFound:
            pass  # gone already: what deleting wants

    # -- our resources ---------------------------------------------------------------------

    def patch_policy_status(self, name: str, status: Obj) -> None:
        self._writing(f"write the status of policy {name}")
        self._json(
            "patch", POLICY_PLURAL, self.custom.patch_cluster_custom_object_status, GROUP, VERSION, POLICY_PLURAL, name, {"status": status}
        )

    def list_policies(self) -> list[Obj]:
        return self._json("list", POLICY_PLURAL, self.custom.list_cluster_custom_object, GROUP, VERSION, POLICY_PLURAL)["items"]

    def list_predictions(self, policy: str) -> list[Obj]:
        return self._json(
            "list",
            PREDICTION_PLURAL,
            self.custom.list_cluster_custom_object,
            GROUP,
            VERSION,
            PREDICTION_PLURAL,
            label_selector=f"ftmoe.io/policy={policy}",
        )["items"]

    def upsert_prediction(self, body: Obj) -> None:
        self._writing(f"write NodeFaultPrediction {body['metadata']['name']}")
        name = body["metadata"]["name"]
        try:
            obj = self._json(
                "patch", PREDICTION_PLURAL, self.custom.patch_cluster_custom_object, GROUP, VERSION, PREDICTION_PLURAL, name, body
            )
        except ApiException as err:
            if err.status != 404:
                raise
            obj = self._json("create", PREDICTION_PLURAL, self.custom.create_cluster_custom_object, GROUP, VERSION, PREDICTION_PLURAL, body)
        self._written(PREDICTION_PLURAL, obj)

    def delete_prediction(self, name: str) -> None:
        self._writing(f"delete NodeFaultPrediction {name}")
        try:
            self._call(
                "delete", PREDICTION_PLURAL, lambda: self.custom.delete_cluster_custom_object(GROUP, VERSION, PREDICTION_PLURAL, name)
            )
        except ApiException as err:
            if err.status != 404:
                raise


def api_message(err: ApiException) -> str:
    try:
        return str(json.loads(err.body or "").get("message", err.reason))
    except (TypeError, ValueError):
        return str(err.reason)
