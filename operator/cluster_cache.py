"""What an interval reads about the cluster: from watch-fed caches, or by listing.

``ClusterCache`` runs four informers (operator/informer.py): nodes, pods, this operator's
NodeFaultPredictions and the policies. Once they are synced an interval reads memory only:
no LIST reaches the API server, whatever the cluster's size. The pod informer also feeds
the migration tracker, so the host graph, the cost model, drains and the self-grading all
read the same picture. ``Listing`` is the same interface over plain LIST calls, for
one-shot commands and tests without a watch.

Objects are trimmed before they are kept: pods to the fields the operator reads, nodes to
their metadata, spec, conditions and allocatable (a real kubelet's image list is the bulk of
a node) with only the managedFields entries that set ``spec.unschedulable``
(operator/ownership.py reads them); at 50,000 pods and 5,000 nodes the rest would be most
of the memory.
"""

from __future__ import annotations

import time
from typing import Any, Protocol

from kubernetes import client

from ftmoe.operator.informer import Informer, Obj
from ftmoe.operator.kube import Kube
from ftmoe.operator.migrations import MigrationTracker
from ftmoe.operator.policy import GROUP, POLICY_PLURAL, PREDICTION_PLURAL, VERSION

PREDICTION_LABEL = "ftmoe.io/policy"


class ClusterReader(Protocol):
    def nodes(self) -> list[Obj]: ...
    def pods(self, match_labels: dict[str, str] | None = None) -> list[Obj]: ...
    def pods_on_node(self, node: str) -> list[Obj]: ...
    def predictions(self, policy: str) -> list[Obj]: ...
    def policies(self) -> list[Obj]: ...


def selector(match_labels: dict[str, str] | None) -> str:
    return ",".join(f"{k}={v}" for k, v in (match_labels or {}).items())


class Listing:
    """Every read is a LIST (one-shot commands, tests that need no watch)."""

    def __init__(self, kube: Kube):
        self.kube = kube

    def nodes(self) -> list[Obj]:
        return self.kube.list_nodes()

    def pods(self, match_labels: dict[str, str] | None = None) -> list[Obj]:
        return self.kube.list_pods(selector(match_labels))

    def pods_on_node(self, node: str) -> list[Obj]:
        return self.kube.pods_on_node(node)

    def predictions(self, policy: str) -> list[Obj]:
        return self.kube.list_predictions(policy)

    def policies(self) -> list[Obj]:
        return self.kube.list_policies()


def slim(obj: Obj) -> Obj:
    """Without managedFields (most of a small object's size)."""
    meta = obj.get("metadata") or {}
    if "managedFields" in meta:
        obj = {**obj, "metadata": {k: v for k, v in meta.items() if k != "managedFields"}}
    return obj


def slim_pod(pod: Obj) -> Obj:
    """What the operator reads of a pod (drain rules, cost model, checkpointing, ground truth,
    migration graph), nothing else: at 50,000 pods the rest is hundreds of MiB."""
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    kept_status = {k: status[k] for k in ("phase", "reason", "message", "startTime") if k in status}
    if status.get("containerStatuses"):
        kept_status["containerStatuses"] = [
            {k: cs[k] for k in ("name", "state", "lastState", "restartCount") if k in cs} for cs in status["containerStatuses"]
        ]
    return {
        "metadata": slim(pod)["metadata"],
        "spec": {
            **({"nodeName": spec["nodeName"]} if "nodeName" in spec else {}),
            "containers": [{k: c[k] for k in ("name", "resources") if k in c} for c in spec.get("containers") or []],
            "volumes": [{"name": v.get("name"), **({"emptyDir": {}} if "emptyDir" in v else {})} for v in spec.get("volumes") or []],
        },
        "status": kept_status,
    }


# What the operator reads of a node's status (readiness and pressure conditions, allocatable
# CPU for the load graph). A real kubelet also reports up to 50 images with every digest,
# its addresses and nodeInfo: tens of KiB a node, most of the node cache at 5,000 nodes.
NODE_STATUS_KEPT = ("conditions", "allocatable", "capacity")


def slim_node(node: Obj) -> Obj:
    """The status fields of NODE_STATUS_KEPT, and managedFields reduced to the entries that
    set spec.unschedulable (None stays None); metadata and spec otherwise whole."""
    out = dict(node)
    status = node.get("status")
    if status:
        out["status"] = {k: status[k] for k in NODE_STATUS_KEPT if k in status}
    meta = node.get("metadata") or {}
    entries = meta.get("managedFields")
    if entries is not None:
        kept = [
            {"manager": e.get("manager", ""), "fieldsV1": {"f:spec": {"f:unschedulable": {}}}}
            for e in entries
            if "f:unschedulable" in ((e.get("fieldsV1") or {}).get("f:spec") or {})
        ]
        out["metadata"] = {**meta, "managedFields": kept}
    return out


def pod_node(pod: Obj) -> str | None:
    return (pod.get("spec") or {}).get("nodeName")


class ClusterCache:
    def __init__(self, api: client.ApiClient, tracker: MigrationTracker | None = None):
        self.core, self.custom = client.CoreV1Api(api), client.CustomObjectsApi(api)

        def custom_list(plural: str) -> Any:
            return lambda **kw: self.custom.list_cluster_custom_object(GROUP, VERSION, plural, **kw)

        def track(etype: str, pod: Obj, listing: bool) -> None:
            if tracker is not None:
                # A listing's ADDED are pods already placed, not arrivals; its DELETED did leave.
                tracker.observe(None if listing and etype != "DELETED" else etype, pod, time.time())

        self.node_informer = Informer("nodes", self.core.list_node, transform=slim_node)
        self.pod_informer = Informer("pods", self.core.list_pod_for_all_namespaces, transform=slim_pod, index=pod_node, on_event=track)
        self.prediction_informer = Informer(
            "nodefaultpredictions",
            custom_list(PREDICTION_PLURAL),
            label_selector=PREDICTION_LABEL,
            transform=slim,
            index=lambda o: ((o.get("metadata") or {}).get("labels") or {}).get(PREDICTION_LABEL),
        )
        self.policy_informer = Informer("faulttolerancepolicies", custom_list(POLICY_PLURAL), transform=slim)
        self.informers = [self.node_informer, self.pod_informer, self.prediction_informer, self.policy_informer]
        self.written_to = {"nodes": self.node_informer, "pods": self.pod_informer, PREDICTION_PLURAL: self.prediction_informer}

    def start(self) -> ClusterCache:
        for i in self.informers:
            i.start()
        return self

    def stop(self) -> None:
        for i in self.informers:
            i.stop()

    def fill(self) -> ClusterCache:
        """One LIST each, here and now, with no watch after it: what a restart does first
        (tests use it alone; the operator's writes still reach it through ``wrote``)."""
        for i in self.informers:
            i.relist()
        return self

    @property
    def synced(self) -> bool:
        return all(i.synced.is_set() for i in self.informers)

    def wait_synced(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        return all(i.wait_synced(max(0.0, deadline - time.monotonic())) for i in self.informers)

    def failing(self, longer_than: float) -> list[str]:
        """Informers whose watch has failed for longer than this: their picture is stale."""
        now = time.monotonic()
        return [
            f"{i.resource} ({i.last_error})" for i in self.informers if i.failing_since is not None and now - i.failing_since > longer_than
        ]

    def unsynced(self) -> list[str]:
        return [f"{i.resource}{f' ({i.last_error})' if i.last_error else ''}" for i in self.informers if not i.synced.is_set()]

    # -- ClusterReader ----------------------------------------------------------------

    def nodes(self) -> list[Obj]:
        return self.node_informer.items()

    def pods(self, match_labels: dict[str, str] | None = None) -> list[Obj]:
        pods = self.pod_informer.items()
        if not match_labels:
            return pods
        want = match_labels.items()
        return [p for p in pods if want <= ((p.get("metadata") or {}).get("labels") or {}).items()]

    def pods_on_node(self, node: str) -> list[Obj]:
        return self.pod_informer.indexed(node)

    def predictions(self, policy: str) -> list[Obj]:
        return self.prediction_informer.indexed(policy)

    def policies(self) -> list[Obj]:
        return self.policy_informer.items()

    # -- write-through ----------------------------------------------------------------

    def wrote(self, resource: str, obj: Obj | None) -> None:
        """What a write returned, applied at once (see Informer.observe_write)."""
        target = self.written_to.get(resource)
        if target is not None and obj:
            target.observe_write(obj)
