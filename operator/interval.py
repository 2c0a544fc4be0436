"""One interval of one policy, start to end: read, predict, decide, act, report.

A plain synchronous function over plain data and a few clients, so that the kopf
daemon stays a dozen lines and tests can call it directly. It runs in a worker thread:
Prometheus queries, model inference and API calls all stay off the event loop.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from kubernetes.client.exceptions import ApiException

from ftmoe.operator import annotations as A
from ftmoe.operator import own_metrics as M
from ftmoe.operator.checkpoint_requests import CheckpointGate, plan_jobs
from ftmoe.operator.cluster_cache import ClusterCache, ClusterReader, Listing
from ftmoe.operator.credentials import CredentialError, token_for
from ftmoe.operator.decisions import CORDON, END_REMEDIATION, REMEDIATE, UNCORDON, Plan, Rules, decide
from ftmoe.operator.inference import NodePrediction, predict
from ftmoe.operator.kube import Forbidden, Kube
from ftmoe.operator.learning.experience import Experience
from ftmoe.operator.learning.grading import Grade
from ftmoe.operator.learning.learner import Learner
from ftmoe.operator.migrations import MigrationTracker
from ftmoe.operator.models import LoadedModel, ModelStore
from ftmoe.operator.node_facts import facts, prediction_patch
from ftmoe.operator.node_load import node_loads
from ftmoe.operator.node_metrics import FeatureWindow, MetricsSource, PrometheusSource
from ftmoe.operator.overlap import overlap_message, shared_nodes
from ftmoe.operator.phase_clock import PhaseClock
from ftmoe.operator.policy import PolicyError, PolicySpec, PrometheusSpec, node_selected
from ftmoe.operator.predictions import action_summary, prediction_body, prediction_name
from ftmoe.operator.remediation import EventSink, Record, Remediator, decision_text, release_nodes
from ftmoe.operator.request_tally import carry, current_tally
from ftmoe.operator.status import (
    EXCLUSIVE,
    EXCLUSIVE_OK,
    INPUTS,
    METRICS,
    MODEL,
    READY,
    REMEDIATION,
    SHARED_WITH_POLICY,
    Condition,
    merge_conditions,
    ready_condition,
)
from ftmoe.operator.storm_breaker import breaker_status, held_trip
from ftmoe.predictor.errors import ModelFileError

log = logging.getLogger("ftmoe.operator")
RECENT_ACTIONS = 20
STATUS_REFRESH = 60.0  # an unchanged status is written again after this long, so lastRun shows the operator alive
CACHE_WAIT = 60.0  # how long an interval waits for the watch caches' first fill before it fails
CACHE_STALE_AFTER = 120.0  # a watch failing this long makes its cache too stale to act on


class CachesNotSynced(Exception):
    """The watch caches have not been filled yet: the interval does not act on a partial picture."""


@dataclass
class Deps:
    kube: Kube
    models: ModelStore
    tracker: MigrationTracker
    events: EventSink
    namespace: str  # the operator's namespace: bearer-token Secrets live there
    make_source: Callable[[PrometheusSpec, str | None], MetricsSource] = PrometheusSource
    sources: dict[str, MetricsSource] = field(default_factory=dict)
    # policy -> NodeFaultPrediction name -> the status last written (by policy: a policy's name may hold dots)
    written: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    state_dir: Path | None = None  # where experience buffers and tuned models persist (a volume in the Deployment)
    learners: dict[str, Learner] = field(default_factory=dict)  # policy -> its learning state (operator/learning/)
    tuner: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(max_workers=1, thread_name_prefix="tuning"))
    writers: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(max_workers=8, thread_name_prefix="api"))
    # status.recentActions as this process last wrote it: the policy body kopf hands over may
    # lag one status write behind, and rebuilding from it would drop the last interval's actions.
    recent_actions: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    last_failure: dict[str, str] = field(default_factory=dict)  # policy -> the error of its failing interval (failures.py)
    # Where intervals read nodes, pods, predictions and policies: the watch caches in the
    # operator (runtime.py), plain LISTs when none is given (one-shot commands, tests).
    reader: ClusterReader | None = None
    status_written: dict[str, tuple[dict[str, Any], float]] = field(default_factory=dict)  # policy -> (status less lastRun, when)

    def __post_init__(self) -> None:
        if self.reader is None:
            self.reader = Listing(self.kube)

    def cluster(self) -> ClusterReader:
        """The reader, once it holds a whole picture of the cluster (``CachesNotSynced`` otherwise)."""
        reader = self.reader
        assert reader is not None
        if isinstance(reader, ClusterCache):
            if not reader.wait_synced(CACHE_WAIT):
                raise CachesNotSynced(f"the watch caches are not filled yet after {CACHE_WAIT:g}s: {', '.join(reader.unsynced())}")
            failing = reader.failing(CACHE_STALE_AFTER)
            if failing:
                raise CachesNotSynced(
                    f"the watch has failed for over {CACHE_STALE_AFTER:g}s, so the cached picture may be stale: {', '.join(failing)}"
                )
        return reader

    def learner(self, policy: str) -> Learner:
        if policy not in self.learners:
            self.learners[policy] = Learner(policy, self.state_dir)
        return self.learners[policy]

    def flush(self) -> None:
        """Save every policy's learning buffer (the operator stops; a large buffer is otherwise saved every few minutes)."""
        for learner in list(self.learners.values()):
            learner.flush()

    def release(self, policy: str) -> None:
        """Forget a policy that went away: its learning state, what was written for it, its
        metric series. A tuning still running finishes into the void. Files under the state
        dir stay (a policy created again under the same name picks them up)."""
        learner = self.learners.pop(policy, None)
        if learner is not None:
            learner.flush()  # a large buffer is saved only every few minutes
        self.recent_actions.pop(policy, None)
        self.written.pop(policy, None)
        self.last_failure.pop(policy, None)
        self.status_written.pop(policy, None)
        M.forget_policy(policy)

    def source(self, spec: PolicySpec) -> MetricsSource:
        token = None
        ref = spec.prometheus.bearer_token_secret
        if ref is not None:
            token = token_for(self.kube.read_secret(self.namespace, ref.name), ref.key, spec.prometheus.url)
        key = f"{spec.prometheus!r}:{hash(token)}"
        if key not in self.sources:
            self.sources[key] = self.make_source(spec.prometheus, token)
        return self.sources[key]


@dataclass
class IntervalResult:
    status: dict[str, Any]
    plan: Plan | None = None
    predictions: dict[str, NodePrediction] = field(default_factory=dict)
    records: list[Record] = field(default_factory=list)
    window: FeatureWindow | None = None
    changed_nodes: set[str] = field(default_factory=set)  # nodes whose shown state this interval changed


def run_interval(policy: dict[str, Any], deps: Deps, now: float | None = None) -> IntervalResult:
    now = time.time() if now is None else now
    started = time.perf_counter()
    meta, prev = policy["metadata"], policy.get("status") or {}
    name, generation = meta["name"], int(meta.get("generation", 1))
    clock = PhaseClock(name)

    def finish(status: dict[str, Any], conditions: list[Condition]) -> dict[str, Any]:
        clock.lap("conditions")
        ready = ready_condition(conditions)
        status.update(
            observedGeneration=generation,
            lastRun=A.rfc3339(now),
            conditions=merge_conditions(last_conditions(deps, name, prev), [ready, *conditions], generation, now),
        )
        write_status(deps, name, status, now)
        clock.lap("status")
        tally = current_tally()
        if tally is not None:
            M.INTERVAL_API_REQUESTS.labels(name, "reads").set(tally.reads)
            M.INTERVAL_API_REQUESTS.labels(name, "writes").set(tally.writes)
            M.INTERVAL_API_EVICTIONS.labels(name).set(tally.evictions)
        if not ready.status:
            M.NOT_READY.labels(name, ready.reason).inc()
            before: dict[str, Any] = next((c for c in prev.get("conditions") or [] if c.get("type") == READY), {})
            if before.get("status") != "False" or before.get("reason") != ready.reason:
                deps.events(policy, "Warning", ready.reason, ready.message)  # once when it turns, not every interval
        M.INTERVAL_SECONDS.labels(name).observe(time.perf_counter() - started)
        return status

    try:
        spec = PolicySpec.from_dict(policy.get("spec") or {})
    except PolicyError as err:
        return IntervalResult(
            finish(
                {},
                [
                    Condition(MODEL, None, "InvalidSpec", str(err)),
                    Condition(METRICS, None, "InvalidSpec", str(err)),
                    Condition(REMEDIATION, False, "InvalidSpec", str(err)),
                ],
            )
        )
    try:
        model = deps.models.get(spec.model)
    except (ModelFileError, OSError, KeyError, ValueError, ApiException) as err:
        msg = f"{type(err).__name__}: {err}"
        return IntervalResult(
            finish(
                {},
                [
                    Condition(MODEL, False, "LoadFailed", msg),
                    Condition(METRICS, None, "ModelNotLoaded", "no model, so no metrics were read"),
                    Condition(REMEDIATION, False, "ModelNotLoaded", "no predictions, so no actions"),
                ],
            )
        )

    learner = deps.learner(name)
    model = learner.serving(spec, model, now)
    cluster = deps.cluster()
    every_node = cluster.nodes()
    nodes = [n for n in every_node if node_selected(n["metadata"].get("labels") or {}, spec)]
    selected = {n["metadata"]["name"] for n in nodes}
    release_nodes(deps.kube, deps.events, policy, [n for n in every_node if n["metadata"]["name"] not in selected], uncordon=False)
    names = [n["metadata"]["name"] for n in nodes]
    by_name = dict(zip(names, nodes))
    predictor = model.predictor
    clock.lap("nodes")
    try:
        source = deps.source(spec)
    except CredentialError as err:
        return IntervalResult(
            finish(
                {},
                [
                    Condition(MODEL, True, "Loaded", f"{model.version} from {model.source}"),
                    Condition(METRICS, False, "CredentialRefused", str(err)),
                    Condition(REMEDIATION, False, "NoMetrics", "no metrics were read, so no actions"),
                ],
            )
        )
    window = source.fetch(names, predictor.feature_names, now, spec.interval, predictor.window, spec.rate_window)
    clock.lap("metrics")
    if window.error:
        M.QUERY_ERRORS.labels(name).inc()
    predictions: dict[str, NodePrediction] = {}
    withheld: dict[str, str] = {}
    if window.complete.any():
        t0 = time.perf_counter()
        inference = predict(predictor, window, deps.tracker.edges(names, window.times, spec.interval))
        predictions, withheld = inference.predictions, inference.withheld
        M.PREDICTION_SECONDS.labels(name).observe(time.perf_counter() - t0)
        for why in withheld.values():
            M.INPUTS_WITHHELD.labels(name, why.split(":")[0]).inc()

    clock.lap("predict")
    pods = cluster.pods()
    loads = node_loads(by_name, pods, spec, deps.tracker, now) if spec.cost_model is not None else {}
    node_facts = [facts(n, predictions[nm].risk if nm in predictions else None, spec, loads.get(nm)) for nm, n in by_name.items()]
    last_breaker = dict(last_status(deps, name, prev).get("stormBreaker") or {})
    held = held_trip(last_breaker, meta.get("annotations") or {}, spec.storm_breaker.latch)
    if held.was_reset:
        deps.events(
            policy,
            "Normal",
            "StormBreakerReset",
            f"reset by annotation {A.RESET_STORM_BREAKER}; the breaker was: {last_breaker.get('reason')}",
        )
    plan = decide(Rules.from_spec(name, spec, len(nodes), held.latched), node_facts, now)
    breaker, latched_now = breaker_status(last_breaker, held, plan, spec.storm_breaker.latch, now)
    if latched_now:
        deps.events(policy, "Warning", "StormBreakerLatched", plan.storm_message)
    previous = {nm: (n["metadata"].get("annotations") or {}).get(A.DECISION, "") for nm, n in by_name.items()}
    gate = CheckpointGate(spec.checkpointing, deps.kube.patch_pod) if spec.checkpointing else None
    remediator = Remediator(deps.kube, policy, deps.events, deps.tracker, spec.drain, gate, cluster.pods_on_node, spec.remediation)
    clock.lap("decide")
    records = remediator.run(plan, by_name, previous, now)
    clock.lap("act")
    graded = learner.record(spec, predictor, by_name, pods, predictions, window, now)
    learner.schedule(deps.tuner, spec, model, now)
    if spec.checkpointing is not None:
        records += update_checkpoints(deps, policy, with_graded_inputs(spec, graded), predictions, window, now)
    clock.lap("learn")
    cordoned = cordoned_after(node_facts, plan, name)
    gap = fleet_gap(window)
    patches = {
        nm: prediction_patch(
            node,
            name,
            predictions.get(nm),
            plan.marks[nm],
            kept_decision(node, plan, nm, gap) or decision_text(plan, nm, nm not in predictions, nm in cordoned, withheld.get(nm)),
            spec,
            now,
        )
        for nm, node in by_name.items()
    }
    parallel(deps, [functools.partial(deps.kube.patch_node, nm, p) for nm, p in patches.items() if p])
    rewritten = write_predictions(deps, policy, spec, plan, predictions, withheld, cordoned, names, window, model, gap)
    changed = {nm for nm, p in patches.items() if p} | rewritten | {r.node for r in records if r.node in by_name}
    M.INTERVAL_CHANGED_NODES.labels(name).set(len(changed))
    remediating = remediating_after(plan, records)
    M.REMEDIATIONS.labels(name).set(remediating)
    export_metrics(name, predictions, plan, records, names)
    export_cordons(
        name, {nm: A.parse_time((by_name[nm]["metadata"].get("annotations") or {}).get(A.CORDONED_AT)) or now for nm in cordoned}
    )
    experts = int(predictor.n_experts()) if hasattr(predictor, "n_experts") else None
    M.set_model(name, model.version, predictor.kind, experts)
    clock.lap("write")

    status: dict[str, Any] = {
        "observedNodes": len(nodes),
        "atRiskNodes": len(plan.at_risk),
        "cordonedNodes": len(cordoned),
        "staleNodes": len(nodes) - len(predictions),
        "remediatingNodes": remediating,
        "budget": {"maxUnavailable": plan.budget, "unavailable": plan.unavailable},
        "stormBreaker": breaker,
        "missingFeatures": window.missing_features,
        "model": {
            "kind": predictor.kind,
            "version": model.version,
            "source": model.source,
            "features": len(predictor.feature_names),
            **({"experts": experts} if experts is not None else {}),
            **({"lastTuning": learner.last_tuning.to_status()} if learner.last_tuning is not None else {}),
            **({"hostBaselineNodes": predictor.host_baseline.known(names)} if predictor.host_baseline is not None else {}),
        },
        "recentActions": recent_actions(deps, name, prev, records),
        "selfGrading": grading_status(graded, learner.buffer(list(predictor.feature_names), list(predictor.class_names))),
    }
    allowed, reason, message = plan.remediation
    conditions = [
        Condition(MODEL, True, "Loaded", f"{model.version} from {model.source}"),
        metrics_condition(window, names, predictions),
        inputs_condition(withheld, names),
        Condition(REMEDIATION, allowed, reason, message),
        exclusive_condition(deps, policy, prev, names, nodes),
    ]
    return IntervalResult(finish(status, conditions), plan, predictions, records, window, changed)


MIN_FAULTS_TO_TRUST = 5  # below this many graded faults, the policy's own recall/precision stand


def with_graded_inputs(spec: PolicySpec, g: Grade) -> PolicySpec:
    """Checkpointing uses the measured recall and precision once enough faults were graded."""
    cp = spec.checkpointing
    if cp is None or g.faults < MIN_FAULTS_TO_TRUST or g.precision is None or g.recall is None:
        return spec
    tuned = cp.model_copy(update={"recall": g.recall, "precision": max(g.precision, 0.01), "lead": g.mean_lead if g.mean_lead else cp.lead})
    return spec.model_copy(update={"checkpointing": tuned})


def grading_status(g: Grade, exp: Experience) -> dict[str, Any]:
    def r(x: float | None) -> float | None:
        return None if x is None else round(x, 4)

    return {
        "precision": r(g.precision),
        "recall": r(g.recall),
        "f1": r(g.f1),
        "meanLeadSeconds": r(g.mean_lead),
        "alarms": g.alarms,
        "hits": g.hits,
        "falseAlarms": g.false_alarms,
        "pending": g.pending,
        "faults": g.faults,
        "caught": g.caught,
        "late": g.late,
        "meanDelaySeconds": r(g.mean_delay),
        "since": A.rfc3339(float(exp.times[0])) if len(exp) else None,
        "perType": {k: {kk: (round(vv, 4) if isinstance(vv, float) else vv) for kk, vv in v.items()} for k, v in g.per_type.items()},
        "recentAlarms": [
            {**a, "time": A.rfc3339(float(a["time"])), "risk": round(float(a["risk"]), 3)}  # type: ignore[arg-type]  # recent entries are dict[str, object]; time is a float
            for a in g.recent
        ],
    }


def update_checkpoints(
    deps: Deps, policy: dict[str, Any], spec: PolicySpec, predictions: dict[str, NodePrediction], window: FeatureWindow, now: float
) -> list[Record]:
    """Write each training job's interval and checkpoint requests on its pods."""
    cp = spec.checkpointing
    assert cp is not None
    loads: dict[str, float] = {}
    if "cpu_utilisation" in window.features and len(window.times):
        col = window.features.index("cpu_utilisation")
        loads = {n: float(v) for n, v in zip(window.nodes, window.values[-1, :, col]) if np.isfinite(v)}
    risks = {n: p.risk for n, p in predictions.items()}
    records: list[Record] = []
    forbidden: set[str] = set()
    # Read again, not taken from the interval's first reading: a drain may have just
    # requested a checkpoint on these pods (the cache holds what that write returned), and a
    # stale copy would request a second one.
    for u in plan_jobs(cp, deps.cluster().pods(cp.pod_selector.match_labels), risks, loads, spec.horizon, spec.thresholds.cordon, now):
        try:
            deps.kube.patch_pod(u.namespace, u.name, {"metadata": {"annotations": u.annotations}})
        except Forbidden as err:
            if u.namespace not in forbidden:  # one record per namespace and interval, not one per pod
                forbidden.add(u.namespace)
                records.append(Record(now, f"{u.namespace}/{u.name}", "checkpoint", "blocked", "CheckpointingForbidden", str(err)))
            continue
        if u.requested:
            ref = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": u.name, "namespace": u.namespace}}
            deps.events(ref, "Normal", "CheckpointRequested", u.reason)
            records.append(Record(now, f"{u.namespace}/{u.name}", "checkpoint", "done", "CheckpointRequested", u.reason))
    return records


def recent_actions(deps: Deps, policy: str, prev: dict[str, Any], records: list[Record]) -> list[dict[str, Any]]:
    """Newest first, at most RECENT_ACTIONS; the cluster's copy is read once, after a restart."""
    known = deps.recent_actions.get(policy)
    if known is None:
        known = list(prev.get("recentActions") or [])
    deps.recent_actions[policy] = ([r.to_status() for r in reversed(records)] + known)[:RECENT_ACTIONS]
    return deps.recent_actions[policy]


def metrics_condition(window: FeatureWindow, names: list[str], predictions: dict[str, NodePrediction]) -> Condition:
    if window.error:
        reason = "PrometheusUnavailable" if window.unreachable else "QueryFailed"
        return Condition(METRICS, False, reason, f"{window.error}; no node is acted on until metrics return")
    if window.missing_features and window.recorded:
        return Condition(
            METRICS,
            False,
            "MissingFeatures",
            f"no recorded series {window.recorded} for model features: {', '.join(window.missing_features)}; load the rules "
            "that `ftmoe operator recording-rules` writes for this policy into Prometheus, or unset spec.prometheus.recordedFeatures",
        )
    if window.missing_features:
        return Condition(
            METRICS,
            False,
            "MissingFeatures",
            f"no query, or no data, for model features: {', '.join(window.missing_features)}; "
            "add or fix them under spec.prometheus.queries",
        )
    if not names:
        return Condition(METRICS, False, "NoNodesSelected", "spec.nodeSelector matches no node")
    stale = [n for n in names if n not in predictions]
    if len(stale) == len(names):
        return Condition(METRICS, False, "NoCompleteWindows", f"no node has every feature at every step of the window ({len(names)} nodes)")
    if stale:
        return Condition(
            METRICS,
            True,
            "PartialData",
            f"{len(stale)} of {len(names)} nodes without a complete window (not acted on): {', '.join(stale[:10])}",
        )
    return Condition(METRICS, True, "MetricsRead", f"complete windows for all {len(names)} nodes")


def inputs_condition(withheld: dict[str, str], names: list[str]) -> Condition:
    """InputsValid: False while some nodes' windows are not trusted (each is left alone)."""
    if not withheld:
        return Condition(INPUTS, True, "InputsValid", "every complete window is within physical ranges and the training data")
    listed = "; ".join(f"{n}: {why}" for n, why in sorted(withheld.items())[:5])
    return Condition(INPUTS, False, "InputsWithheld", f"{len(withheld)} of {len(names)} nodes get no prediction and no action: {listed}")


def exclusive_condition(
    deps: Deps, policy: dict[str, Any], prev: dict[str, Any], names: list[str], nodes: list[dict[str, Any]]
) -> Condition:
    """NodesExclusive, and a Warning event when it turns False."""
    shared = shared_nodes(policy["metadata"]["name"], names, deps.cluster().policies(), nodes)
    if not shared:
        return Condition(EXCLUSIVE, True, EXCLUSIVE_OK, "no other policy selects these nodes")
    message = overlap_message(shared, len(names))
    before: dict[str, Any] = next((c for c in prev.get("conditions", []) if c.get("type") == EXCLUSIVE), {})
    if before.get("status") != "False" or before.get("message") != message[:1000]:
        deps.events(policy, "Warning", SHARED_WITH_POLICY, message)
    return Condition(EXCLUSIVE, False, SHARED_WITH_POLICY, message)


def cordoned_after(node_facts: list[Any], plan: Plan, policy: str) -> set[str]:
    ours = {n.name for n in node_facts if n.unschedulable and n.cordoned_by == policy}
    for a in plan.actions:
        if not a.dry_run and a.kind == CORDON:
            ours.add(a.node)
        if not a.dry_run and a.kind == UNCORDON:
            ours.discard(a.node)
    return ours


def last_status(deps: Deps, policy: str, prev: dict[str, Any]) -> dict[str, Any]:
    """The status as last written: this process's copy, else (after a restart) the body's.
    The body kopf hands over may lag a write behind."""
    written = deps.status_written.get(policy)
    return written[0] if written else prev


def last_conditions(deps: Deps, policy: str, prev: dict[str, Any]) -> list[dict[str, Any]]:
    """The conditions as last written (a lagging copy would move lastTransitionTime)."""
    return list(last_status(deps, policy, prev).get("conditions") or [])


def remediating_after(plan: Plan, records: list[Record]) -> int:
    started = sum(1 for r in records if r.action == REMEDIATE and r.outcome == "done" and r.reason != "RemediationEscalated")
    ended = sum(1 for r in records if r.action == END_REMEDIATION and r.outcome == "done")
    return plan.remediating + started - ended


def write_status(deps: Deps, policy: str, status: dict[str, Any], now: float) -> None:
    """Patch the status when it changed, or when the last write is STATUS_REFRESH old."""
    content = {k: v for k, v in status.items() if k != "lastRun"}
    last = deps.status_written.get(policy)
    if last is not None and last[0] == content and now - last[1] < STATUS_REFRESH:
        return
    deps.kube.patch_policy_status(policy, status)
    deps.status_written[policy] = (content, now)


def parallel(deps: Deps, calls: list[Callable[[], None]]) -> None:
    """Independent API writes, a few at a time (``deps.writers``; the client's token bucket
    paces them): at thousands of nodes one after another would outlast the interval."""
    for future in [deps.writers.submit(carry(call)) for call in calls]:
        future.result()  # re-raise the first failure


def fleet_gap(window: FeatureWindow) -> bool:
    """No node has a complete metric window: Prometheus unreachable, a query failing, a
    fleet-wide scrape gap, or the first intervals after a start. The gap is the source's, not
    any node's, and the policy's MetricsAvailable condition says so once. Marking every node's
    decision and NodeFaultPrediction stale as well cost two writes a node when the gap began
    and two when it ended: at 5,000 nodes and the default 50 requests a second, intervals of
    over three minutes in which nothing was acted on (bench/operator.py --scale). The
    hysteresis clocks still stop and restart (no data is no evidence), which writes only the
    nodes at risk or held cordoned, the ones whose clocks run (``next_marks``)."""
    return bool(window.nodes) and not window.complete.any()


def kept_decision(node: dict[str, Any], plan: Plan, name: str, gap: bool) -> str | None:
    """In a fleet-wide gap a node keeps the decision it shows (``predicted-at`` gives its
    age), unless the plan acts on it or blocks an action anyway."""
    if not gap or any(plan.for_node(name)):
        return None
    return (node["metadata"].get("annotations") or {}).get(A.DECISION)


def write_predictions(
    deps: Deps,
    policy: dict[str, Any],
    spec: PolicySpec,
    plan: Plan,
    predictions: dict[str, NodePrediction],
    withheld: dict[str, str],
    cordoned: set[str],
    names: list[str],
    window: FeatureWindow,
    model: LoadedModel,
    gap: bool,
) -> set[str]:
    """Create, update and delete the policy's NodeFaultPredictions; returns the nodes whose one was written.

    A prediction is written only when what a reader sees changes; after a restart, what is
    already in the cluster counts as written, so the first interval does not rewrite them all.
    In a fleet-wide gap (``fleet_gap``) none is created or rewritten."""
    pname = policy["metadata"]["name"]
    written = deps.written.setdefault(pname, {})
    existing = {o["metadata"]["name"]: o for o in deps.cluster().predictions(pname)}
    writes: list[Callable[[], None]] = []
    rewritten: set[str] = set()
    for nm in names:
        pred = predictions.get(nm)
        if gap and pred is None:
            continue
        body = prediction_body(
            policy,
            nm,
            pred,
            action_summary(plan, nm, pred, nm in cordoned, spec, withheld.get(nm)),
            plan.marks[nm].risk_since,
            float(window.times[-1]),
            model.version,
            spec,
            plan.costs.get(nm),
        )
        key = body["metadata"]["name"]
        seen = shown(body)
        if key not in written and key in existing:
            written[key] = shown(existing[key])
        before = written.get(key, {}).get("risk")
        if before is not None and seen.get("risk") is not None:
            t = spec.thresholds
            kept = A.shown_risk_after(f"{before:.2f}", seen["risk"], (t.annotate, t.cordon, t.evict))
            if kept == f"{before:.2f}":
                seen["risk"] = before  # within the deadband: as written (operator/annotations.py)
        if written.get(key) != seen:
            writes.append(functools.partial(deps.kube.upsert_prediction, body))
            written[key] = seen
            rewritten.add(nm)
    parallel(deps, writes)
    wanted = {prediction_name(pname, nm) for nm in names}
    for key in existing:
        if key not in wanted:
            deps.kube.delete_prediction(key)
            written.pop(key, None)
    return rewritten


# Status fields that move every interval without a reader noticing: the window's end, the
# raw scores and drivers, and the most likely fault type of a node below the annotate
# threshold (typeShown, which is "-" there, is what a reader sees; a healthy node's type
# flips with noise).
NOT_SHOWN = ("windowEnd", "scores", "drivers", "driversSummary", "riskShown", "faultType")


def shown(prediction: dict[str, Any]) -> dict[str, Any]:
    """What a reader of a NodeFaultPrediction notices: its spec and its status less what moves every interval."""
    status = prediction.get("status") or {}
    return {
        "spec": prediction.get("spec"),
        **{
            k: (round(v, 2) if k == "risk" and v is not None else v)
            for k, v in status.items()
            if k not in NOT_SHOWN and v is not None  # a merge patch drops nulls
        },
    }


def export_cordons(policy: str, since: dict[str, float]) -> None:
    """ftmoe_node_cordoned_since_timestamp_seconds for the nodes the policy holds cordoned, and no others."""
    for family in M.CORDONED_SINCE.collect():
        for sample in family.samples:
            if sample.labels.get("policy") == policy and sample.labels.get("node") not in since:
                M.CORDONED_SINCE.remove(policy, sample.labels["node"])
    for node, t in since.items():
        M.CORDONED_SINCE.labels(policy, node).set(t)


def export_metrics(policy: str, predictions: dict[str, NodePrediction], plan: Plan, records: list[Record], names: list[str]) -> None:
    """Counters advance every interval (a blocked cordon counts each time it is refused);
    status and events only report changes."""
    for nm, p in predictions.items():
        M.NODE_RISK.labels(policy, nm).set(p.risk)
    M.STALE_NODES.labels(policy).set(len(names) - len(predictions))
    M.STORM_BREAKER.labels(policy).set(1 if plan.storm else 0)
    for a in plan.actions:
        if a.dry_run:
            M.ACTIONS.labels(policy, a.kind, "dry-run", a.reason).inc()
    for b in plan.blocked:
        M.BLOCKED.labels(policy, b.kind, b.reason).inc()
    for r in records:
        if r.outcome == "done":
            M.ACTIONS.labels(policy, r.action, r.outcome, r.reason).inc()
        elif r.outcome == "blocked" and r.reason == "EvictionBlocked":
            M.BLOCKED.labels(policy, r.action, r.reason).inc()
