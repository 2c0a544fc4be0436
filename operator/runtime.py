"""What the handlers share for the life of the process: clients, the watch caches, model
cache, pod tracker and the leader elector. Built once by `ftmoe operator run`."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from kubernetes import client, config

from ftmoe.operator import gc_clock
from ftmoe.operator.cluster_cache import ClusterCache
from ftmoe.operator.events import EventPoster
from ftmoe.operator.interval import Deps
from ftmoe.operator.kube import Kube
from ftmoe.operator.leader import LeaseElector
from ftmoe.operator.migrations import MigrationTracker
from ftmoe.operator.models import ModelStore
from ftmoe.operator.rate_limit import DEFAULT_BURST, DEFAULT_QPS, TokenBucket
from ftmoe.operator.remediation import EventSink

DEFAULT_NAMESPACE = "ftmoe-system"


@dataclass
class Runtime:
    deps: Deps
    elector: LeaseElector | None
    cache: ClusterCache | None = None

    @property
    def leading(self) -> bool:
        return self.elector is None or self.elector.holds()


def api_client(kubeconfig: Path | None) -> client.ApiClient:
    if kubeconfig is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
        config.load_incluster_config()
        api = client.ApiClient()
    else:
        api = config.new_client_from_config(config_file=str(kubeconfig) if kubeconfig else None)
    api.rest_client.pool_manager.connection_pool_kw["maxsize"] = 16  # the interval writes in parallel; four watches stay open
    return api


def operator_namespace(explicit: str | None) -> str:
    if explicit:
        return explicit
    path = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
    return os.environ.get("POD_NAMESPACE") or (path.read_text().strip() if path.is_file() else DEFAULT_NAMESPACE)


def build(
    kubeconfig: Path | None,
    namespace: str,
    events: EventSink | None = None,
    leader_election: bool = True,
    state_dir: Path | None = None,
    qps: float = DEFAULT_QPS,
    burst: int = DEFAULT_BURST,
    lease: tuple[float, float] = (15.0, 5.0),
) -> Runtime:
    """``events`` defaults to core/v1 Events that `kubectl describe` finds (operator/events.py).
    The watch caches start with the operator (handlers.configure), not here."""
    gc_clock.install()
    api = api_client(kubeconfig)
    elector = LeaseElector(api, namespace, duration=lease[0], renew=lease[1]) if leader_election else None
    may_write = elector.holds if elector is not None else None
    tracker = MigrationTracker()
    cache = ClusterCache(api, tracker)
    kube = Kube(api, may_write, TokenBucket(qps, burst), wrote=cache.wrote)
    deps = Deps(
        kube=kube,
        models=ModelStore(kube.read_config_map),
        tracker=tracker,
        events=events or EventPoster(api, may_write),
        namespace=namespace,
        state_dir=state_dir,
        reader=cache,
    )
    return Runtime(deps, elector, cache)


_current: Runtime | None = None


def install(rt: Runtime) -> None:
    global _current
    _current = rt


def current() -> Runtime:
    if _current is None:
        raise RuntimeError("the operator runtime is not set up; start the operator with `ftmoe operator run`")
    return _current
