"""Intervals read watch caches, not LISTs; they write only what changed; the client paces
itself and waits what a 429 asks. Against kmock's in-memory API server, with the caches
filled by their one LIST (kmock's watch streams never end, and aiohttp then waits a minute
at each test's end; the watch path runs against the real API server in
test_operator_e2e.py::test_warm_intervals_read_watches_and_write_only_changes); the
informer's watch loop against scripted streams; the 429 against a tiny HTTP server that
answers like an overloaded kube-apiserver. The scale itself: bench/operator.py --scale."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from test_interval_kmock import NODES, FirstFeatureModel, FixedSource, deps_for, node, policy
from test_interval_kmock import cluster as cluster  # noqa: F401 - the kmock fixture, shared

from ftmoe.operator import annotations as A
from ftmoe.operator.cluster_cache import ClusterCache, slim_node
from ftmoe.operator.informer import Informer, decode
from ftmoe.operator.interval import CACHE_STALE_AFTER, CachesNotSynced, run_interval
from ftmoe.operator.kube import Kube
from ftmoe.operator.migrations import MigrationTracker
from ftmoe.operator.ownership import cordoned_by
from ftmoe.operator.rate_limit import TokenBucket, retry_after, with_retries
from ftmoe.operator.request_tally import tallying


def api_for(kmock: Any) -> client.ApiClient:
    cfg = client.Configuration()
    cfg.host = str(kmock.url).rstrip("/")
    return client.ApiClient(cfg)


def lists(kmock: Any) -> int:
    return sum(1 for r in kmock if r == "list")


@pytest.fixture()
async def cached(cluster: Any) -> AsyncIterator[tuple[Any, Any, ClusterCache]]:
    risks = {"n0": 0.1, "n1": 0.95, "n2": 0.4, "n3": 0.05}
    deps, _ = deps_for(cluster, FixedSource(risks), FirstFeatureModel())
    cache = ClusterCache(api_for(cluster), deps.tracker)
    await asyncio.to_thread(cache.fill)
    assert cache.synced
    deps.reader = cache
    deps.kube.wrote = cache.wrote
    yield cluster, deps, cache


async def test_a_warm_interval_makes_no_list_call(cached: tuple[Any, Any, ClusterCache]) -> None:
    kmock, deps, cache = cached
    before = lists(kmock)
    with tallying() as tally:
        result = await asyncio.to_thread(run_interval, policy(), deps, 1_000_000.0)
    assert lists(kmock) == before and tally.reads == 0, tally.by_verb
    assert node(kmock, "n1")["spec"]["unschedulable"] is True  # it still acted, on what the cache showed
    assert result.status["observedNodes"] == len(NODES)
    # The cordon it wrote is in the cache at once (write-through), before its watch event could arrive.
    assert cordoned_by(cache.node_informer.get("n1") or {}) == "p"


async def test_an_interval_times_each_of_its_phases(cached: tuple[Any, Any, ClusterCache]) -> None:
    """ftmoe_interval_phase_seconds: every phase of an interval that acts is timed, and the
    phases add up to the interval's own wall time (nothing slow goes unaccounted)."""
    from ftmoe.operator import own_metrics as M

    _, deps, _ = cached

    def sums() -> dict[str, float]:
        out: dict[str, float] = {}
        for metric in M.REGISTRY.collect():
            for s in metric.samples:
                if s.labels.get("policy") == "p" and s.name in ("ftmoe_interval_phase_seconds_sum", "ftmoe_interval_duration_seconds_sum"):
                    out[s.labels.get("phase", "interval")] = s.value
        return out

    before = sums()
    await asyncio.to_thread(run_interval, policy(), deps, 1_000_000.0)
    took = {k: v - before.get(k, 0.0) for k, v in sums().items()}
    phases = ("nodes", "metrics", "predict", "decide", "act", "learn", "write", "conditions", "status")
    assert set(phases) <= set(took) and all(took[ph] > 0 for ph in phases), took
    assert sum(took[ph] for ph in phases) == pytest.approx(took["interval"], rel=0.05, abs=0.005), took


async def test_an_unchanged_node_gets_no_write(cached: tuple[Any, Any, ClusterCache]) -> None:
    kmock, deps, cache = cached
    await asyncio.to_thread(run_interval, policy(), deps, 1_000_000.0)  # cordons n1
    assert all((cache.node_informer.get(n) or {})["metadata"]["annotations"].get(A.RISK) for n in NODES)  # written through
    await asyncio.to_thread(run_interval, policy(), deps, 1_000_005.0)  # reports the budget the cordon used
    with tallying() as tally:
        result = await asyncio.to_thread(run_interval, policy(), deps, 1_000_010.0)
    assert tally.writes == 0 and tally.total == 0, tally.by_verb  # nodes, predictions and status all as they were
    assert result.changed_nodes == set()
    # A node whose shown risk changes gets its writes, the others none.
    deps.make_source = lambda spec, token: FixedSource({"n0": 0.1, "n1": 0.95, "n2": 0.6, "n3": 0.05})
    deps.sources.clear()
    with tallying() as tally:
        result = await asyncio.to_thread(run_interval, policy(), deps, 1_000_020.0)
    assert result.changed_nodes == {"n2"}
    assert tally.by_verb["patch"] == 3, tally.by_verb  # n2's annotations, its NodeFaultPrediction, the status
    assert node(kmock, "n2")["metadata"]["annotations"][A.RISK] == "0.60"


async def test_a_fleet_wide_metrics_gap_rewrites_no_node_and_no_prediction(cached: tuple[Any, Any, ClusterCache]) -> None:
    """Prometheus down, or a scrape gap across every node: the policy's condition says so, and
    nodes and NodeFaultPredictions keep the decision and risk they showed. Only the nodes whose
    hysteresis clock runs (at risk, or held cordoned) get a write each way, as the clock stops
    and restarts (no data is no evidence); at 5,000 nodes and 50 requests a second a write on
    every node took minutes each way."""
    kmock, deps, cache = cached
    risks = {"n0": 0.1, "n1": 0.95, "n2": 0.4, "n3": 0.05}
    await asyncio.to_thread(run_interval, policy(), deps, 1_000_000.0)
    await asyncio.to_thread(run_interval, policy(), deps, 1_000_005.0)
    before = {n: dict(node(kmock, n)["metadata"]["annotations"]) for n in NODES}
    clocks = (A.RISK_SINCE, A.HEALTHY_SINCE)
    clocked = [n for n in NODES if any(before[n].get(c) for c in clocks)]
    assert clocked == ["n1"], before  # at risk and cordoned; the healthy nodes run no clock
    predictions_before = {o["metadata"]["name"]: o["status"] for o in cache.predictions("p")}

    def source(src: FixedSource) -> None:
        deps.make_source = lambda spec, token: src
        deps.sources.clear()

    source(FixedSource(None, error="Prometheus unreachable: connection refused"))
    with tallying() as tally:
        result = await asyncio.to_thread(run_interval, policy(), deps, 1_000_010.0)
    metrics = next(c for c in result.status["conditions"] if c["type"] == "MetricsAvailable")
    assert metrics["status"] == "False" and result.status["staleNodes"] == len(NODES)
    assert tally.writes == len(clocked) + 1, tally.by_verb  # the running clocks, and the policy status
    after = {n: node(kmock, n)["metadata"]["annotations"] for n in NODES}
    assert all(not any(after[n].get(c) for c in clocks) for n in NODES), after
    assert {n: {k: v for k, v in a.items() if k not in clocks} for n, a in after.items()} == {
        n: {k: v for k, v in a.items() if k not in clocks} for n, a in before.items()
    }
    assert {o["metadata"]["name"]: o["status"] for o in cache.predictions("p")} == predictions_before

    source(FixedSource(risks))  # the metrics return, as they were
    with tallying() as tally:
        await asyncio.to_thread(run_interval, policy(), deps, 1_000_020.0)
    # The clocks restart, and so does the at-risk n1's riskSince on its prediction; no other prediction is rewritten.
    assert tally.writes == len(clocked) + 1 + 1, tally.by_verb
    assert {o["metadata"]["name"]: o["status"]["risk"] for o in cache.predictions("p")} == {
        k: v["risk"] for k, v in predictions_before.items()
    }

    # One node dark while the others report is that node's gap: it is marked stale.
    source(FixedSource({n: r for n, r in risks.items() if n != "n2"}))
    result = await asyncio.to_thread(run_interval, policy(), deps, 1_000_030.0)
    assert result.changed_nodes == {"n2"}
    assert node(kmock, "n2")["metadata"]["annotations"][A.DECISION] == "stale: no complete metric window"


async def test_after_a_restart_existing_predictions_are_not_rewritten(cached: tuple[Any, Any, ClusterCache]) -> None:
    kmock, deps, cache = cached
    await asyncio.to_thread(run_interval, policy(), deps, 1_000_000.0)
    await asyncio.to_thread(run_interval, policy(), deps, 1_000_005.0)
    await asyncio.to_thread(cache.fill)  # the restart's one LIST
    assert len(cache.predictions("p")) == len(NODES)
    deps.written.clear()  # a new process remembers nothing it wrote
    deps.status_written.clear()
    with tallying() as tally:
        await asyncio.to_thread(run_interval, policy(), deps, 1_000_010.0)
    assert tally.by_verb == {"patch": 1}, tally.by_verb  # the status only: its lastRun is the one thing that moved


async def test_the_pod_cache_feeds_the_migration_graph_and_skips_pods_already_running(cluster: Any) -> None:
    owner = [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "rs-1", "controller": True}]
    cluster.objects["v1/pods", "ns", "a"] = {
        "metadata": {"name": "a", "namespace": "ns", "uid": "a-1", "ownerReferences": owner},
        "spec": {"nodeName": "n0"},
    }
    tracker = MigrationTracker()
    cache = ClusterCache(api_for(cluster), tracker)
    await asyncio.to_thread(cache.fill)
    assert tracker.arrivals_per_node(time.time(), 60) == {}  # listed at start: not an arrival
    assert [p["metadata"]["name"] for p in cache.pods_on_node("n0")] == ["a"]
    b = {"metadata": {"name": "b", "namespace": "ns", "uid": "b-1", "ownerReferences": owner}, "spec": {"nodeName": "n1"}}
    cache.pod_informer.apply("ADDED", b)  # as the watch delivers it
    assert tracker.arrivals_per_node(time.time(), 60) == {"n1": 1}
    assert [p["metadata"]["name"] for p in cache.pods_on_node("n1")] == ["b"]
    cache.pod_informer.apply("MODIFIED", {**b, "spec": {"nodeName": "n2"}})
    assert cache.pods_on_node("n1") == [] and len(cache.pods_on_node("n2")) == 1  # the index follows the pod
    assert cache.pods({"x": "y"}) == []


def test_node_managed_fields_keep_only_who_cordoned() -> None:
    entries = [
        {"manager": "kwok", "fieldsV1": {"f:status": {"f:conditions": {}}}},
        {"manager": "ftmoe-operator", "fieldsV1": {"f:spec": {"f:unschedulable": {}}, "f:metadata": {}}},
    ]
    n = {"metadata": {"name": "n", "annotations": {A.CORDONED_BY: "p"}, "managedFields": entries}, "spec": {"unschedulable": True}}
    slim = slim_node(n)
    assert [e["manager"] for e in slim["metadata"]["managedFields"]] == ["ftmoe-operator"]
    assert cordoned_by(slim) == cordoned_by(n) == "p"
    assert slim_node({"metadata": {"name": "m"}}) == {"metadata": {"name": "m"}}  # no managedFields stays none


def test_node_cache_keeps_what_the_interval_reads_and_drops_a_kubelets_image_list() -> None:
    from ftmoe.operator.node_load import cpu_cores
    from ftmoe.operator.node_status import condition

    images = [
        {"names": [f"registry.example/app-{i}@sha256:{'0' * 64}", f"registry.example/app-{i}:v1"], "sizeBytes": 10**8} for i in range(50)
    ]
    conditions = [{"type": "Ready", "status": "True"}, {"type": "MemoryPressure", "status": "False"}]
    n = {
        "metadata": {"name": "n", "labels": {"pool": "gpu"}, "annotations": {A.CORDONED_BY: "p"}},
        "spec": {"unschedulable": True, "taints": [{"key": "k", "effect": "NoSchedule"}]},
        "status": {
            "conditions": conditions,
            "allocatable": {"cpu": "15500m"},
            "capacity": {"cpu": "16"},
            "images": images,
            "nodeInfo": {"kubeletVersion": "v1.34.0"},
            "addresses": [{"type": "InternalIP", "address": "10.0.0.1"}],
        },
    }
    s = slim_node(n)
    assert set(s["status"]) == {"conditions", "allocatable", "capacity"}
    assert s["metadata"] == n["metadata"] and s["spec"] == n["spec"]
    assert condition(s, "Ready") == "True" and condition(s, "MemoryPressure") == "False"
    assert cpu_cores(s["status"]["allocatable"]["cpu"]) == 15.5
    assert len(json.dumps(s)) * 20 < len(json.dumps(n))
    assert "images" in n["status"]  # the event's own object is left as it came


class FakeResponse:
    def __init__(self, body: bytes = b"", lines: list[dict[str, Any]] | None = None):
        self.data = body
        self.lines = lines or []

    def stream(self, amt: Any = None, decode_content: bool = False) -> Iterator[bytes]:
        for line in self.lines:
            yield json.dumps(line).encode() + b"\n"

    def close(self) -> None: ...

    def release_conn(self) -> None: ...


def test_a_410_gone_rebuilds_the_store_from_a_new_list() -> None:
    """The watch's version fell out of etcd's window: list again; what vanished meanwhile is DELETED."""
    calls: list[str] = []
    lists_served = [
        {"metadata": {"resourceVersion": "10"}, "items": [{"metadata": {"name": "a", "resourceVersion": "5"}}]},
        {"metadata": {"resourceVersion": "20"}, "items": [{"metadata": {"name": "b", "resourceVersion": "15"}}]},
    ]
    events: list[tuple[str, str, bool]] = []
    informer: Informer

    def list_call(**kw: Any) -> FakeResponse:
        if kw.get("watch"):
            calls.append(f"watch@{kw.get('resource_version')}")
            if sum(c.startswith("watch") for c in calls) == 1:
                return FakeResponse(lines=[{"type": "ERROR", "object": {"code": 410, "reason": "Expired", "message": "too old"}}])
            informer.stopped.set()
            return FakeResponse(lines=[{"type": "MODIFIED", "object": {"metadata": {"name": "b", "resourceVersion": "21"}, "x": 1}}])
        calls.append("list")
        return FakeResponse(json.dumps(lists_served.pop(0)).encode())

    informer = Informer("things", list_call, on_event=lambda t, o, listing: events.append((t, o["metadata"]["name"], listing)))
    informer._run()
    assert calls == ["list", "watch@10", "list", "watch@20"]
    assert informer.relists == 1 and [o["metadata"]["name"] for o in informer.items()] == ["b"]
    assert ("DELETED", "a", True) in events and ("ADDED", "b", True) in events


def test_events_decode_as_the_standard_library_reads_them() -> None:
    """msgspec where it can; what it refuses (a number beyond a double, a lone surrogate) by json, not an error."""
    n = {"metadata": {"name": "n1", "resourceVersion": "12", "labels": {"a": "é"}}, "status": {"conditions": [{"type": "Ready"}]}}
    line = json.dumps({"type": "MODIFIED", "object": {**n, "spec": {"big": 10**30, "f": -0.5, "none": None, "t": True}}})
    assert decode(line) == decode(line.encode()) == json.loads(line)
    assert decode('{"x": 1e400}') == {"x": float("inf")}
    assert decode('{"x": "\\ud800"}') == {"x": "\ud800"}
    with pytest.raises(ValueError):
        decode(b'{"type": "MODIFIED", "obj')  # a cut stream stays an error: the watch resumes from its version


def test_a_write_through_never_replaces_a_newer_watched_copy() -> None:
    informer = Informer("things", lambda **kw: None)
    informer.apply("ADDED", {"metadata": {"name": "a", "resourceVersion": "30"}, "v": "watched"})
    informer.observe_write({"metadata": {"name": "a", "resourceVersion": "29"}, "v": "written"})
    assert (informer.get("a") or {})["v"] == "watched"
    informer.observe_write({"metadata": {"name": "a", "resourceVersion": "31"}, "v": "written"})
    assert (informer.get("a") or {})["v"] == "written"


# -- pacing and 429 ------------------------------------------------------------------------


class Overloaded(BaseHTTPRequestHandler):
    """429 with Retry-After for the first ``refusals`` PATCHes, then 200 (as APF sheds load)."""

    refusals = 2
    seen: list[float] = []

    def log_message(self, *args: Any) -> None: ...

    def do_PATCH(self) -> None:  # noqa: N802 - http.server's naming
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        Overloaded.seen.append(time.monotonic())
        if len(Overloaded.seen) <= Overloaded.refusals:
            body = b'{"kind":"Status","status":"Failure","reason":"TooManyRequests","code":429}'
            self.send_response(429)
            self.send_header("Retry-After", "1")
        else:
            body = b'{"metadata":{"name":"n0","resourceVersion":"7"}}'
            self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def test_a_429_is_retried_after_retry_after() -> None:
    Overloaded.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Overloaded)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        cfg = client.Configuration()
        cfg.host = f"http://127.0.0.1:{server.server_port}"
        wrote: list[dict[str, Any]] = []
        kube = Kube(client.ApiClient(cfg), wrote=lambda resource, obj: wrote.append(obj))
        with tallying() as tally:
            kube.patch_node("n0", {"metadata": {"labels": {"a": "b"}}})
        gaps = [b - a for a, b in zip(Overloaded.seen, Overloaded.seen[1:])]
        assert len(Overloaded.seen) == 3 and all(g >= 0.95 for g in gaps), gaps  # waited the second asked, twice
        assert tally.by_verb["patch"] == 3  # each try is a request
        assert wrote == [{"metadata": {"name": "n0", "resourceVersion": "7"}}]
    finally:
        server.shutdown()


def test_retry_after_is_read_capped_and_other_errors_are_not_retried() -> None:
    slept: list[float] = []
    err = ApiException(status=429)
    err.headers = {"Retry-After": "3"}
    assert retry_after(err) == 3.0
    err.headers = {"Retry-After": "3600"}
    assert retry_after(err) == 30.0  # capped: the next interval asks again
    attempts = iter([err, None])

    def flaky() -> str:
        e = next(attempts)
        if e is not None:
            raise e
        return "ok"

    assert with_retries(flaky, sleep=slept.append) == "ok" and slept == [30.0]
    with pytest.raises(ApiException):
        with_retries(lambda: (_ for _ in ()).throw(ApiException(status=403)), sleep=slept.append)
    assert slept == [30.0]


def test_the_token_bucket_paces_a_burst() -> None:
    clock = [0.0]
    slept: list[float] = []
    bucket = TokenBucket(qps=10, burst=5, clock=lambda: clock[0])
    for _ in range(5):
        bucket.acquire(sleep=slept.append)
    assert slept == []  # the burst passes at once
    bucket.acquire(sleep=slept.append)
    assert slept == [pytest.approx(0.1)]  # the sixth waits for a token at 10/s


async def test_a_watch_failing_too_long_stops_the_interval_from_acting(cached: tuple[Any, Any, ClusterCache]) -> None:
    kmock, deps, cache = cached
    cache.node_informer.failing_since = time.monotonic() - CACHE_STALE_AFTER - 1
    cache.node_informer.last_error = "ApiException: (403) Forbidden"
    with pytest.raises(CachesNotSynced, match="nodes .ApiException: .403. Forbidden"):
        await asyncio.to_thread(run_interval, policy(), deps, 1_000_000.0)
    assert not node(kmock, "n1")["spec"].get("unschedulable")  # nothing was acted on


def test_a_failing_watch_is_timed_from_its_first_failure_and_cleared_by_a_list() -> None:
    attempts: list[str] = []
    informer: Informer

    def list_call(**kw: Any) -> FakeResponse:
        attempts.append("watch" if kw.get("watch") else "list")
        if len(attempts) < 3:
            raise ApiException(status=500, reason="etcd leader changed")
        informer.stopped.set()
        return FakeResponse(json.dumps({"metadata": {"resourceVersion": "3"}, "items": []}).encode())

    informer = Informer("things", list_call)
    slept: list[float] = []
    informer.stopped.wait = lambda t: slept.append(t) or False  # type: ignore[method-assign, func-returns-value]
    informer._run()
    assert slept == [0.5, 1] and informer.failing_since is None and informer.synced.is_set()


def test_a_cached_pod_keeps_what_the_operator_reads() -> None:
    from ftmoe.operator.cluster_cache import slim_pod
    from ftmoe.operator.drain import skip_reason
    from ftmoe.operator.learning.ground_truth import pod_evidence
    from ftmoe.operator.node_load import pod_cpu

    oom = {"terminated": {"reason": "OOMKilled", "finishedAt": "2026-01-01T00:00:10Z"}}
    pod = {
        "metadata": {"name": "a", "namespace": "ns", "managedFields": [{"manager": "x"}], "ownerReferences": [{"controller": True}]},
        "spec": {
            "nodeName": "n0",
            "containers": [{"name": "c", "image": "big", "resources": {"requests": {"cpu": "250m"}}, "env": [{"name": "X"}]}],
            "volumes": [{"name": "scratch", "emptyDir": {"medium": "Memory"}}, {"name": "cfg", "configMap": {"name": "c"}}],
            "tolerations": [{"key": "k"}],
        },
        "status": {
            "phase": "Running",
            "conditions": [{"type": "Ready"}],
            "containerStatuses": [{"name": "c", "lastState": oom, "image": "big"}],
        },
    }
    s = slim_pod(pod)
    assert "managedFields" not in s["metadata"] and "tolerations" not in s["spec"] and "conditions" not in s["status"]
    assert pod_cpu(s) == pod_cpu(pod) == 0.25
    assert skip_reason(s) == skip_reason(pod) and "emptyDir" in (skip_reason(s) or "")
    assert pod_evidence([s], 0.0) == pod_evidence([pod], 0.0) == "memory"
