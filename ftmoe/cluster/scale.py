"""The local cluster's timings at large node counts, and the bound pods that load it.

kwok heartbeats every fake node (its Lease and our status stage, ftmoe/cluster/stages/).
At the default cadence 1,000 nodes already keep this machine's two cores busy in the API
server alone, so both slow down with the node count, keeping to about ``WRITES_PER_SECOND``
heartbeat writes each, inside kwokctl's node-monitor grace period (its heartbeat factor 5
makes that 3m20s, which caps the Lease, so above 2,000 nodes Lease renewals pass that
rate). A real kubelet renews its Lease every 10 s and posts status every 5 minutes when
nothing changes; the local cluster at 5,000 nodes posts status every 100 s and renews its
Leases every 45 s.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

WRITES_PER_SECOND = 50.0
GRACE_PERIOD_SECONDS = 200  # kwokctl's --node-monitor-grace-period with its default heartbeat factor 5
LOAD_NAMESPACE = "ftmoe-load"


@dataclass(frozen=True)
class Heartbeat:
    status_seconds: float  # our node-status stage's delay (jitter adds up to half again)
    lease_seconds: int  # kwokctl --node-lease-duration-seconds (renewed at a quarter of it)

    @classmethod
    def for_nodes(cls, nodes: int) -> Heartbeat:
        status = max(10.0, nodes / WRITES_PER_SECOND)
        # Renewals at lease/4 every node: lease = 4 * nodes / rate, at least kwok's default.
        lease = int(max(40, 4 * nodes / WRITES_PER_SECOND))
        return cls(status, min(lease, GRACE_PERIOD_SECONDS - 20))


def render_heartbeat_stage(template: str, beat: Heartbeat) -> str:
    """The shipped stage with its delay and jitter set for this node count."""
    ms = int(beat.status_seconds * 1000)
    out = template.replace("durationMilliseconds: 10000", f"durationMilliseconds: {ms}")
    return out.replace("jitterDurationMilliseconds: 5000", f"jitterDurationMilliseconds: {ms // 2}")


def load_pod(node: str, k: int) -> dict[str, Any]:
    """A small pod bound to ``node`` (no scheduling: 50,000 binds would take the scheduler most of an hour here)."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": f"load-{node}-{k}", "namespace": LOAD_NAMESPACE, "labels": {"app": "ftmoe-load"}},
        "spec": {
            "nodeName": node,
            "containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10", "resources": {"requests": {"cpu": "10m"}}}],
            "automountServiceAccountToken": False,
        },
    }


def create_load_pods(
    create: Callable[[dict[str, Any]], None], nodes: list[str], per_node: int, say: Callable[[str], None], workers: int = 16
) -> int:
    """Create ``per_node`` pods on every node, ``workers`` at a time, with a progress line every 10 s; returns how many."""
    bodies = [load_pod(n, k) for n in nodes for k in range(per_node)]
    done, last = 0, time.monotonic()
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="load-pods") as pool:
        for _ in pool.map(create, bodies):
            done += 1
            if time.monotonic() - last > 10:
                say(f"  {done}/{len(bodies)} pods created")
                last = time.monotonic()
    return done


def pod_creator(kubeconfig: str) -> Callable[[dict[str, Any]], None]:
    """create_namespaced_pod, tolerating pods that already exist (``up`` run again)."""
    from kubernetes import client, config
    from kubernetes.client.exceptions import ApiException

    api = config.new_client_from_config(config_file=kubeconfig)
    api.rest_client.pool_manager.connection_pool_kw["maxsize"] = 32
    core = client.CoreV1Api(api)
    try:
        core.create_namespace({"metadata": {"name": LOAD_NAMESPACE}})  # type: ignore[arg-type]  # a dict body is accepted
    except ApiException as err:
        if err.status != 409:
            raise
    deadline = time.monotonic() + 60
    while True:  # the ServiceAccount admission plugin refuses pods until the namespace's default account exists
        try:
            core.read_namespaced_service_account("default", LOAD_NAMESPACE, _preload_content=False)
            break
        except ApiException as err:
            if err.status != 404 or time.monotonic() > deadline:
                raise
            time.sleep(0.5)

    def create(body: dict[str, Any]) -> None:
        for attempt in range(5):
            try:
                core.create_namespaced_pod(LOAD_NAMESPACE, body, _preload_content=False)  # type: ignore[arg-type]  # a dict body is accepted
                return
            except ApiException as err:
                if err.status == 409:
                    return
                if err.status not in (429, 500, 503, 504) or attempt == 4:
                    raise
                time.sleep(0.5 * 2**attempt)

    return create


def describe(beat: Heartbeat) -> str:
    return json.dumps({"node_status_every_seconds": beat.status_seconds, "node_lease_seconds": beat.lease_seconds})
