"""The operator's own Prometheus metrics (served by ``ftmoe operator run --metrics-port``)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.metrics import MetricWrapperBase

REGISTRY = CollectorRegistry(auto_describe=True)

PREDICTION_SECONDS = Histogram(
    "ftmoe_prediction_duration_seconds",
    "Model inference time per policy interval.",
    ["policy"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    registry=REGISTRY,
)
INTERVAL_SECONDS = Histogram(
    "ftmoe_interval_duration_seconds",
    "Wall time of one policy interval (query, predict, act, write).",
    ["policy"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
    registry=REGISTRY,
)
INTERVAL_PHASE_SECONDS = Histogram(
    "ftmoe_interval_phase_seconds",
    "Wall time of each phase of a policy interval: nodes (the node cache and selection), metrics (Prometheus), predict, "
    "decide, act (cordons, drains, remediation), learn (self-grading and checkpoint requests), write (node patches, "
    "NodeFaultPredictions, metrics export), conditions (the policy's conditions, its overlap with other policies) and "
    "status (the status write).",
    ["policy", "phase"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    registry=REGISTRY,
)
NODE_RISK = Gauge("ftmoe_node_risk", "Predicted fault probability within the policy's horizon.", ["policy", "node"], registry=REGISTRY)
ACTIONS = Counter(
    "ftmoe_actions_total",
    "Actions taken (outcome done) or reported (dry-run).",
    ["policy", "action", "outcome", "reason"],
    registry=REGISTRY,
)
BLOCKED = Counter(
    "ftmoe_blocked_actions_total",
    "Actions the safety rules or the API refused, by reason.",
    ["policy", "action", "reason"],
    registry=REGISTRY,
)
QUERY_ERRORS = Counter("ftmoe_prometheus_query_errors_total", "Intervals whose Prometheus queries failed.", ["policy"], registry=REGISTRY)
INTERVAL_FAILURES = Counter(
    "ftmoe_interval_failures_total", "Policy intervals that raised (the error is in the Ready condition).", ["policy"], registry=REGISTRY
)
NOT_READY = Counter(
    "ftmoe_intervals_not_ready_total",
    "Policy intervals that ended with Ready=False, by reason (InvalidSpec, LoadFailed, CredentialRefused, ...).",
    ["policy", "reason"],
    registry=REGISTRY,
)
INPUTS_WITHHELD = Counter(
    "ftmoe_inputs_withheld_total",
    "Node windows given no prediction although complete (reason: invalid-input, out-of-distribution, non-finite-risk).",
    ["policy", "reason"],
    registry=REGISTRY,
)
STALE_NODES = Gauge("ftmoe_stale_nodes", "Selected nodes without a complete metric window.", ["policy"], registry=REGISTRY)
ALARM_TO_ACTION = Histogram(
    "ftmoe_alarm_to_action_seconds",
    "Time from a node's alarm (its risk first at the cordon threshold) to its cordon, to its drain finished, and to its "
    "first remediation object.",
    ["policy", "step"],
    buckets=(5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200),
    registry=REGISTRY,
)
DRAIN_BLOCKED_AGE = Gauge(
    "ftmoe_drain_blocked_age_seconds",
    "Age of a drain whose last evictions a PodDisruptionBudget refused (the series goes when the drain ends).",
    ["policy", "node"],
    registry=REGISTRY,
)
STALE_STATE_SWEPT = Counter(
    "ftmoe_stale_state_swept_total",
    "Nodes whose annotations and labels were removed because the policy no longer selects them.",
    ["policy"],
    registry=REGISTRY,
)
CORDONED_SINCE = Gauge(
    "ftmoe_node_cordoned_since_timestamp_seconds",
    "When the policy cordoned the node (unix time); the series goes when the node is uncordoned or let go.",
    ["policy", "node"],
    registry=REGISTRY,
)
REMEDIATIONS = Gauge("ftmoe_remediations_in_flight", "Selected nodes handed to a remediator.", ["policy"], registry=REGISTRY)
STORM_BREAKER = Gauge(
    "ftmoe_storm_breaker_open", "1 while the policy's storm breaker stops cordons, drains and remediations.", ["policy"], registry=REGISTRY
)
LEADER = Gauge("ftmoe_leader", "1 while this replica holds the leader Lease.", registry=REGISTRY)
SELF_GRADE = Gauge(
    "ftmoe_self_grade",
    "The operator's own alarms scored against what the cluster showed (metric: precision, recall, mean_lead_seconds).",
    ["policy", "metric"],
    registry=REGISTRY,
)
MODEL_INFO = Gauge(
    "ftmoe_model_info",
    "1 for the model version a policy serves (kind: ftmoe, mlp, ...); a tuned version replaces the series of the one before.",
    ["policy", "version", "kind"],
    registry=REGISTRY,
)
MODEL_EXPERTS = Gauge(
    "ftmoe_model_experts",
    "Experts in the FT-MoE model a policy serves (online tuning adds and removes them).",
    ["policy"],
    registry=REGISTRY,
)
TUNINGS = Counter(
    "ftmoe_online_tunings_total", "Online tunings by outcome (promoted, kept, skipped).", ["policy", "outcome"], registry=REGISTRY
)
API_REQUESTS = Counter(
    "ftmoe_api_requests_total",
    "Kubernetes API requests sent (retries included), by verb and resource.",
    ["verb", "resource"],
    registry=REGISTRY,
)
INTERVAL_API_REQUESTS = Gauge(
    "ftmoe_interval_api_requests",
    "API requests the policy's last interval made (kind: reads, writes); 0 reads once the watch caches are warm.",
    ["policy", "kind"],
    registry=REGISTRY,
)
INTERVAL_API_EVICTIONS = Gauge(
    "ftmoe_interval_api_evictions",
    "Pod evictions the policy's last interval requested (counted among its writes too): a drain writes once per pod.",
    ["policy"],
    registry=REGISTRY,
)
INTERVAL_CHANGED_NODES = Gauge(
    "ftmoe_interval_changed_nodes",
    "Nodes whose shown state (annotations, labels, cordon, NodeFaultPrediction) the policy's last interval changed.",
    ["policy"],
    registry=REGISTRY,
)
INFORMER_LISTS = Counter(
    "ftmoe_informer_lists_total",
    "LIST requests of the watch caches (the first fill, and rebuilds after 410 Gone).",
    ["resource"],
    registry=REGISTRY,
)
INFORMER_OBJECTS = Gauge("ftmoe_informer_objects", "Objects held in each watch cache.", ["resource"], registry=REGISTRY)
PROMETHEUS_QUERY_SECONDS = Histogram(
    "ftmoe_prometheus_query_duration_seconds",
    "Wall time of one Prometheus range query: one per model feature and chunk of nodes, or with spec.prometheus.recordedFeatures "
    "one per chunk, labelled with the recorded series' name.",
    ["feature"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    registry=REGISTRY,
)
PROMETHEUS_SAMPLES = Gauge(
    "ftmoe_prometheus_response_samples", "Samples in the last response for each feature (all chunks).", ["feature"], registry=REGISTRY
)
PROMETHEUS_WINDOW_FETCHES = Counter(
    "ftmoe_prometheus_window_fetches_total",
    "Feature windows read from Prometheus: full (every step of the window) or incremental (only the steps since the "
    "last interval, plus its last step again; the older steps are the last window's).",
    ["kind"],
    registry=REGISTRY,
)
PROMETHEUS_CHUNKED = Counter(
    "ftmoe_prometheus_chunked_queries_total",
    "Queries split into chunks of nodes because Prometheus refused the whole (too many samples).",
    ["feature"],
    registry=REGISTRY,
)
GC_SECONDS = Counter(
    "ftmoe_gc_seconds_total",
    "CPU-seconds spent in Python's garbage collector, by generation (2: a full collection, which walks every cached object).",
    ["generation"],
    registry=REGISTRY,
)
SERVED: dict[str, tuple[str, str]] = {}  # policy -> (version, kind) of the MODEL_INFO series now exported


def set_model(policy: str, version: str, kind: str, experts: int | None) -> None:
    previous = SERVED.get(policy)
    if previous is not None and previous != (version, kind):
        MODEL_INFO.remove(policy, *previous)
    SERVED[policy] = (version, kind)
    MODEL_INFO.labels(policy, version, kind).set(1)
    if experts is not None:
        MODEL_EXPERTS.labels(policy).set(experts)


def forget_policy(policy: str) -> None:
    """Remove every series labelled with ``policy``: a deleted policy exports nothing. Every
    metric of this module with a ``policy`` label, so that a new one cannot be left out."""
    for metric in [m for m in globals().values() if isinstance(m, MetricWrapperBase) and "policy" in m._labelnames]:
        names = list(metric._labelnames)
        for family in metric.collect():
            for sample in family.samples:
                if sample.labels.get("policy") == policy:
                    values = tuple(sample.labels[n] for n in names)
                    try:
                        metric.remove(*values)
                    except KeyError:
                        pass  # a histogram's _bucket/_sum samples name the same series more than once
    SERVED.pop(policy, None)
