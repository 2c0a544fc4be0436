"""kopf handlers: settings, start and stop of the watch caches (which also feed the
migration graph), and one daemon per FaultTolerancePolicy that runs an interval every
``spec.interval``."""

from __future__ import annotations

import asyncio
import copy
import logging
import time
from typing import Any

import kopf

from ftmoe.operator.durations import parse_duration
from ftmoe.operator.failures import interval_failed
from ftmoe.operator.interval import run_interval
from ftmoe.operator.kube import NotLeader
from ftmoe.operator.policy import GROUP, POLICY_PLURAL, VERSION
from ftmoe.operator.remediation import release_nodes
from ftmoe.operator.request_tally import tallying
from ftmoe.operator.runtime import current

log = logging.getLogger("ftmoe.operator")


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    settings.peering.standalone = True  # one writer comes from the Lease, not kopf peering
    settings.scanning.disabled = True  # no CRD watch: the two resources are known, and RBAC stays small
    settings.persistence.finalizer = "ftmoe.io/finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="ftmoe.io")
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix="ftmoe.io")
    settings.posting.level = logging.WARNING  # kopf's own log lines do not become events
    rt = current()
    if rt.cache is not None:
        rt.cache.start()
    if rt.elector is not None:
        rt.elector.start()


@kopf.on.login()
def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    """In a pod, the ServiceAccount; elsewhere the kubeconfig `ftmoe operator run` was given
    (kopf's default client login reads $KUBECONFIG only when kubernetes is first imported)."""
    return kopf.login_with_service_account(**kwargs) or kopf.login_with_kubeconfig(**kwargs)


@kopf.on.cleanup()
def release(**_: Any) -> None:
    rt = current()
    rt.deps.flush()
    if rt.cache is not None:
        rt.cache.stop()
    if rt.elector is not None:
        rt.elector.release()


@kopf.daemon(GROUP, VERSION, POLICY_PLURAL, cancellation_timeout=30)
async def reconcile_policy(body: kopf.Body, stopped: kopf.DaemonStopped, **_: Any) -> None:
    rt = current()
    while not stopped:
        started = time.monotonic()
        policy = copy.deepcopy(dict(body))
        if rt.leading:
            try:
                result = await asyncio.to_thread(counted_interval, policy, rt)
                log.info("%s: %s", policy["metadata"]["name"], summary(result.status))
                rt.deps.last_failure.pop(policy["metadata"]["name"], None)
            except NotLeader as err:
                log.warning("%s: lost the Lease during the interval: %s", policy["metadata"]["name"], err)
            except Exception as err:  # noqa: BLE001 - one failed interval must not stop the policy
                await asyncio.to_thread(interval_failed, rt.deps, policy, err)
        # A steady cadence (not interval + work time); a late interval starts the next one at once.
        await stopped.wait(max(0.0, started + interval_seconds(policy) - time.monotonic()))
    # The policy was deleted (or the operator stops): its in-memory state goes with it.
    rt.deps.release(body["metadata"]["name"])


@kopf.on.delete(GROUP, VERSION, POLICY_PLURAL)
async def policy_deleted(body: kopf.Body, **_: Any) -> None:
    """Undo what the policy did before kopf lets it go: uncordon its cordons, remove its marks."""
    rt = current()
    if not rt.leading:
        raise kopf.TemporaryError("only the leader releases a deleted policy's nodes", delay=10)
    policy = copy.deepcopy(dict(body))
    released = await asyncio.to_thread(lambda: release_nodes(rt.deps.kube, rt.deps.events, policy, rt.deps.cluster().nodes(), True))
    log.info("%s deleted: released %d nodes", policy["metadata"]["name"], len(released))


def counted_interval(policy: dict[str, Any], rt: Any) -> Any:
    with tallying():  # the interval's API requests, for ftmoe_interval_api_requests
        return run_interval(policy, rt.deps)


def interval_seconds(policy: dict[str, Any]) -> float:
    try:
        return max(1.0, parse_duration((policy.get("spec") or {}).get("interval", "30s")))
    except ValueError:
        return 30.0


def summary(status: dict[str, Any]) -> str:
    ready: dict[str, Any] = next((c for c in status.get("conditions", []) if c["type"] == "Ready"), {})
    return (
        f"Ready={ready.get('status')} ({ready.get('reason')}); nodes {status.get('observedNodes', 0)}, "
        f"at risk {status.get('atRiskNodes', 0)}, cordoned {status.get('cordonedNodes', 0)}, stale {status.get('staleNodes', 0)}"
    )
