"""FaultTolerancePolicy spec (ftmoe.io/v1alpha1): every field once, with its default,
bounds, description and CEL rules; the CRD's spec schema is generated from these classes.

Python names are snake_case and durations are seconds; the wire form is camelCase and
Go-style duration strings. Each rule in a class's ``cel_rules`` has its Python twin in the
validator below it, so a spec parsed without the API server is refused for the same
reasons. A description that does not say its default gets "Default <value>." appended by
the generator, so ``kubectl explain`` always shows it.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal, get_args

from pydantic import Field, model_validator

from ftmoe.operator.api.disruption_types import Maintenance, Remediation, Window
from ftmoe.operator.api.errors import parse
from ftmoe.operator.api.fields import PERCENT_CEL, ApiModel, Duration, IntOrPercent, cel

Mode = Literal["Observe", "Cordon", "Evict"]
MODES: tuple[str, ...] = get_args(Mode)
CheckpointPolicyName = Literal["RiskAware", "Daly", "Young", "Fixed", "Linear"]
CHECKPOINT_POLICIES: tuple[str, ...] = get_args(CheckpointPolicyName)

DEFAULT_LABELS: dict[str, str] = {
    "MemoryPressure": "memory",
    "DiskPressure": "disk",
    "PIDPressure": "cpu",
    "KernelDeadlock": "cpu",
    "ReadonlyFilesystem": "disk",
    "Ready": "unknown",
}


class LabelSelectorRequirement(ApiModel):
    cel_rules: ClassVar[list[dict[str, Any]]] = [
        cel(
            "(self.operator in ['In', 'NotIn']) == (has(self.values) && size(self.values) > 0)",
            "values must be non-empty for In and NotIn, and empty for Exists and DoesNotExist",
        )
    ]
    key: str = Field(description="The label key.")
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"] = Field(description="In, NotIn, Exists or DoesNotExist.")
    values: list[str] | None = Field(None, description="Values for In and NotIn; empty for Exists and DoesNotExist.")

    @model_validator(mode="after")
    def _values_match_operator(self) -> LabelSelectorRequirement:
        if (self.operator in ("In", "NotIn")) != bool(self.values):
            raise ValueError("values must be non-empty for In and NotIn, and empty for Exists and DoesNotExist")
        return self


class LabelSelector(ApiModel):
    match_labels: dict[str, str] = Field(default_factory=dict, description="Labels that must all be present with these values.")
    match_expressions: list[LabelSelectorRequirement] = Field(
        default_factory=list, description="Label requirements, all of which must hold."
    )

    def empty(self) -> bool:
        return not self.match_labels and not self.match_expressions


class SecretKeyRef(ApiModel):
    name: str = Field(description="The Secret's name.")
    key: str = Field("token", description="The key in the Secret's data.")


class PrometheusSpec(ApiModel):
    url: str = Field(
        pattern=r"^https?://[^\s]+$", description="Base URL of the Prometheus HTTP API, e.g. http://prometheus.monitoring:9090."
    )
    node_label: str = Field(
        "node",
        description=(
            "The series label that holds the Kubernetes node name. Every query must aggregate `by (<nodeLabel>)` "
            "so that it returns one series per node."
        ),
    )
    rate_window: Duration | None = Field(
        None, description=("The range used inside rate()/increase() ({window} in queries). Default: twice the interval, at least 15s.")
    )
    timeout: Duration = Field(10.0, description="Per-request timeout.")
    insecure_skip_verify: bool = Field(False, description="Skip TLS certificate verification (test clusters only).")
    ca_file: str | None = Field(None, description="Path, inside the operator's container, of a CA bundle for an https URL.")
    bearer_token_secret: SecretKeyRef | None = Field(
        None,
        description=(
            "A Secret in the operator's namespace holding a bearer token. The operator uses it only if an admin labelled "
            "the Secret ftmoe.io/prometheus-credential=true and listed this url in its annotation ftmoe.io/allowed-urls, "
            "so a policy cannot send a credential to a URL of its choosing."
        ),
    )
    queries: dict[str, Annotated[str, Field(min_length=1)]] = Field(
        default_factory=dict,
        description=(
            "PromQL per model feature name, overriding the defaults (which read node_exporter and kubelet series "
            "with a `node` label). In a query, `{node}` is replaced by the node label matcher and `{window}` by "
            "rateWindow. A feature the model needs that has no query is reported in status, never filled with zeros."
        ),
    )
    recorded_features: str | None = Field(
        None,
        pattern=r"^[a-zA-Z_:][a-zA-Z0-9_:]*$",
        description=(
            "For a Prometheus whose queries cost more than evaluating them (remote, federated, at thousands of nodes): the "
            "name of a series that Prometheus recording rules keep, one per node and "
            "feature (its `feature` label names the feature), e.g. ftmoe:node_feature. The operator then reads every "
            "feature in four queries of it instead of one query per feature, and Prometheus evaluates the feature queries "
            "on its own schedule, off the interval's path; a recorded value can be up to one interval older. "
            "`ftmoe operator recording-rules` writes the rules from this "
            "policy's queries, rateWindow and interval; load them into Prometheus first. Unset: one query per feature."
        ),
    )


class ConfigMapRef(ApiModel):
    namespace: str = Field(description="The ConfigMap's namespace.")
    name: str = Field(description="The ConfigMap's name.")


class ModelRef(ApiModel):
    cel_rules: ClassVar[list[dict[str, Any]]] = [
        cel("self.source != 'Path' || has(self.path)", "model.path is required when model.source is Path", ".path"),
        cel(
            "self.source != 'ConfigMap' || has(self.configMap)", "model.configMap is required when model.source is ConfigMap", ".configMap"
        ),
    ]
    source: Literal["Default", "Path", "ConfigMap"] = Field(
        "Default", description="Default (embedded model), Path (a model folder in the container) or ConfigMap."
    )
    path: str | None = Field(None, description="For source Path, the folder holding config.json and model.safetensors.")
    config_map: ConfigMapRef | None = Field(
        None, description=("For source ConfigMap, a ConfigMap holding config.json and (binaryData) model.safetensors.")
    )

    @model_validator(mode="after")
    def _source_has_its_field(self) -> ModelRef:
        if self.source == "Path" and not self.path:
            raise ValueError("path is required when model.source is Path")
        if self.source == "ConfigMap" and not self.config_map:
            raise ValueError("configMap is required when model.source is ConfigMap")
        return self

    def key(self) -> str:
        cm = f"{self.config_map.namespace}/{self.config_map.name}" if self.config_map else ""
        return f"{self.source}:{self.path or ''}:{cm}"


class Thresholds(ApiModel):
    cel_rules: ClassVar[list[dict[str, Any]]] = [
        cel("self.annotate <= self.cordon && self.cordon <= self.evict", "thresholds must satisfy annotate <= cordon <= evict")
    ]
    annotate: float = Field(0.3, ge=0, le=1, description="At or above this risk the node is labelled ftmoe.io/at-risk=true.")
    cordon: float = Field(
        0.6, ge=0, le=1, description=("At or above this risk, held for hysteresis.riskFor, the node is cordoned (modes Cordon and Evict).")
    )
    evict: float = Field(0.8, ge=0, le=1, description="At or above this risk a cordoned node is drained (mode Evict).")

    @model_validator(mode="after")
    def _ordered(self) -> Thresholds:
        if not self.annotate <= self.cordon <= self.evict:
            raise ValueError("must satisfy 0 <= annotate <= cordon <= evict <= 1")
        return self


class StormBreaker(ApiModel):
    max_at_risk: IntOrPercent = Field(
        "30%",
        description=(
            "Trip when more selected nodes than this (count or percent, rounded down but at least 1 for a percent "
            "other than 0%, so that one node at risk in a small pool is no storm) are at or above the cordon threshold."
        ),
        json_schema_extra={
            "x-kubernetes-validations": [cel(PERCENT_CEL, "stormBreaker.maxAtRisk must be a count >= 0 or a percent from 0% to 100%")]
        },
    )
    max_acted_on: IntOrPercent | None = Field(
        None,
        description=(
            "Also trip when this policy cordoned more selected nodes than this (count or percent, rounded down, at least 1 "
            "for a percent other than 0%) within window, at risk or not now: a slow storm. Unset: no such rule."
        ),
        json_schema_extra={
            "x-kubernetes-validations": [cel(PERCENT_CEL, "stormBreaker.maxActedOn must be a count >= 0 or a percent from 0% to 100%")]
        },
    )
    window: Duration = Field(3600.0, description="The window over which maxActedOn counts cordons.")
    latch: bool = Field(
        False,
        description=(
            "Once tripped, stay tripped (no cordon, drain or remediation) until a human resets it with `kubectl ftmoe reset "
            "POLICY` or by setting the policy's annotation ftmoe.io/reset-storm-breaker to a new value. Unset, the breaker "
            "closes by itself when the storm passes."
        ),
    )


class Hysteresis(ApiModel):
    risk_for: Duration = Field(
        60.0, description=("Risk must stay at or above the cordon threshold this long before the node is cordoned (0s acts at once).")
    )
    healthy_for: Duration = Field(
        600.0,
        description=(
            "Risk must stay below the cordon threshold, with the node Ready and without pressure conditions, this long "
            "before a node this policy cordoned is uncordoned."
        ),
    )


class DrainSpec(ApiModel):
    cel_rules: ClassVar[list[dict[str, Any]]] = [
        cel(
            "!self.force || duration(self.timeout) >= duration('1m')",
            "drain.timeout must be at least 1m when drain.force is set",
            ".timeout",
        )
    ]
    timeout: Duration = Field(
        600.0, description=("Stop trying to evict after this long (events say which pods remain), unless force is set.")
    )
    grace_period_seconds: int = Field(
        -1, ge=-1, description=("Grace period passed to evictions; -1 uses each pod's own terminationGracePeriodSeconds.")
    )
    force: bool = Field(
        False,
        description=(
            "After the timeout, delete the remaining pods directly, bypassing PodDisruptionBudgets. Off unless you opt in; "
            "needs the opt-in ClusterRole binding deploy/optional/force-drain.yaml, and a timeout of at least 1m."
        ),
    )
    evict_bare_pods: bool = Field(
        False,
        description=(
            "Also evict pods that no controller owns (nothing recreates them), as kubectl drain --force does. "
            "Off: they stay, and the drain event names them."
        ),
    )
    delete_empty_dir_data: bool = Field(
        False,
        description=(
            "Also evict pods with emptyDir volumes (their data is lost), as kubectl drain --delete-emptydir-data does. "
            "Off: they stay, and the drain event names them."
        ),
    )

    @model_validator(mode="after")
    def _force_waits(self) -> DrainSpec:
        if self.force and self.timeout < 60:
            raise ValueError("timeout must be at least 1m when drain.force is set")
        return self


class Escalation(ApiModel):
    max_cordons_per_node: int = Field(
        3,
        ge=1,
        description=("After this many cordons of one node within window, the operator stops cordoning it and emits an Escalated event."),
    )
    window: Duration = Field(86400.0, description="The window over which cordons are counted.")


class Learning(ApiModel):
    labels: dict[str, str] = Field(
        default_factory=lambda: dict(DEFAULT_LABELS),
        description=(
            "Node condition type to fault type (cpu, memory, disk or unknown) when the condition is True. Default: "
            "MemoryPressure memory, DiskPressure disk, PIDPressure cpu, KernelDeadlock cpu, ReadonlyFilesystem disk, and "
            "Ready (False or Unknown) unknown. OOM-killed containers count as memory, kubelet evictions as disk or memory."
        ),
    )
    buffer_intervals: int = Field(2880, ge=10, description="The most intervals the buffer keeps.")
    tune_every: int = Field(
        120,
        ge=0,
        description=(
            "Every this many intervals, tune a copy of the FT-MoE model's experts on the buffer in the background (0 turns it "
            "off); the copy serves only if its self-graded F1 on the newest holdout share of the buffer is at least the "
            "serving model's."
        ),
    )
    tune_epochs: int = Field(4, ge=1, description="Epochs of each online tuning.")
    holdout: float = Field(
        0.2, ge=0.05, le=0.5, description=("The newest share of the buffer kept out of tuning, to judge champion against challenger.")
    )
    retention: Duration = Field(172800.0, description="Intervals older than this leave the buffer.")


class CostWeights(ApiModel):
    """spec.costModel; the Python names are the cost model's own (costs.py)."""

    resource: float = Field(
        1.0, ge=0, alias="resourceWeight", description=("l1, the weight of what acting costs (pods moved, checkpoints, capacity).")
    )
    impact: float = Field(
        1.0, ge=0, alias="impactWeight", description=("l2, the weight of the expected loss if the node fails (risk x pods and work on it).")
    )
    # Defaults are what Kubernetes v1.34 charges (docs/kubernetes-regime.md): a moved pod is down
    # while its replacement starts; a pod on a node that dies is down for the node controller's
    # grace period (50 s), the default unreachable toleration (300 s) and the same start.
    restart_seconds: Duration = Field(
        60.0, alias="podRestartTime", description="How long a moved pod is unavailable: its replacement's start (schedule, pull, ready)."
    )
    fault_seconds: Duration = Field(
        410.0,
        alias="faultDowntime",
        description=(
            "How long a pod on a node that fails is unavailable: node-monitor-grace-period (50s) + the default "
            "unreachable toleration (300s) + podRestartTime."
        ),
    )
    capacity_seconds: float = Field(
        0.0,
        ge=0,
        alias="capacityCostPerCore",
        description=("What one cordoned core costs over the horizon, in pod-seconds of service (0 when spare capacity is free)."),
    )


class CheckpointSpec(ApiModel):
    """The checkpoint interval policy's knobs (checkpoint_policy.py); the Python names are its own."""

    cel_rules: ClassVar[list[dict[str, Any]]] = [
        cel(
            "duration(self.minInterval) <= duration(self.maxInterval)",
            "checkpointing.minInterval must not exceed checkpointing.maxInterval",
        )
    ]
    policy: CheckpointPolicyName = Field(
        "RiskAware",
        description=(
            "RiskAware (Daly's interval for the faults the predictor misses, plus a checkpoint on an alarm when the work "
            "at risk exceeds C/precision), Daly or Young (static, from the fleet MTBF), Fixed, or Linear (alpha*P + "
            "beta*load checkpoints per hour, a simple baseline)."
        ),
    )
    cost: Duration = Field(
        150.0,
        alias="checkpointCost",
        description=("C, the time training stalls for one checkpoint. Per pod, annotation ftmoe.io/checkpoint-cost-seconds overrides it."),
    )
    persist: Duration = Field(
        0.0,
        alias="persistTime",
        description=("For asynchronous checkpoints, the time until one is durable; the interval never drops below it."),
    )
    fixed_interval: Duration = Field(1800.0, description="The interval of policy Fixed.")
    min_interval: Duration = Field(300.0, description="The shortest interval the operator will ask for.")
    max_interval: Duration = Field(14400.0, description="The longest interval the operator will ask for.")
    node_mtbf: Duration = Field(
        30 * 86400.0, alias="nodeMTBF", description=("Fleet baseline mean time between failures of one node, for faults no model predicts.")
    )
    recall: float = Field(
        0.9, ge=0, le=1, description=("The predictor's recall (share of faults it alarms on); the periodic interval covers the rest.")
    )
    precision: float = Field(0.8, ge=0.01, le=1, description="The predictor's precision (share of alarms that are real faults).")
    lead: Duration = Field(
        120.0,
        alias="leadTime",
        description=(
            "The predictor's mean lead time; an alarm helps only if a checkpoint is durable before the fault, so shorter "
            "leads lengthen RiskAware's interval towards Daly's."
        ),
    )
    alpha: float = Field(6.0, ge=0, description="Linear only, checkpoints per hour per unit of fault probability.")
    beta: float = Field(1.0, ge=0, description="Linear only, checkpoints per hour per unit of load.")
    min_change: float = Field(
        0.2, ge=0, description=("Damping, the fraction by which a new interval must differ from the current one to be written.")
    )
    cooldown: Duration = Field(600.0, description="Damping, the least time between two interval changes of a pod.")

    @model_validator(mode="after")
    def _min_below_max(self) -> CheckpointSpec:
        if self.min_interval > self.max_interval:
            raise ValueError("minInterval must not exceed checkpointing.maxInterval")
        return self

    def clamp(self, interval: float) -> float:
        low = max(self.min_interval, self.persist)  # an async checkpoint must finish persisting first
        return min(max(interval, low), self.max_interval)


class Checkpointing(CheckpointSpec):
    cel_rules: ClassVar[list[dict[str, Any]]] = [
        *CheckpointSpec.cel_rules,
        cel(
            "(has(self.podSelector.matchLabels) && size(self.podSelector.matchLabels) > 0) || "
            "(has(self.podSelector.matchExpressions) && size(self.podSelector.matchExpressions) > 0)",
            "checkpointing.podSelector must select something (matchLabels or matchExpressions); an empty selector "
            "would treat every pod as a training job",
            ".podSelector",
        ),
    ]
    pod_selector: LabelSelector = Field(
        description=("Label selector for the training pods, in every namespace; pods are grouped into jobs by their controlling owner.")
    )
    ack_timeout: Duration = Field(
        120.0, description=("Before evicting a selected pod, how long to wait for ftmoe.io/checkpoint-ack to match the request.")
    )

    @model_validator(mode="after")
    def _selects_something(self) -> Checkpointing:
        if self.pod_selector.empty():
            raise ValueError(
                "podSelector must select something (matchLabels or matchExpressions); "
                "an empty selector would treat every pod as a training job"
            )
        return self


class PolicySpec(ApiModel):
    """What the policy watches and how far it may act."""

    cel_rules: ClassVar[list[dict[str, Any]]] = [
        cel("duration(self.horizon) >= duration(self.interval)", "spec.horizon must be at least spec.interval", ".horizon")
    ]
    mode: Mode = Field(
        "Observe",
        description=(
            "Observe (default, the shadow mode) predicts, annotates nodes and writes NodeFaultPredictions with the action "
            "it would take, but never cordons or evicts. Cordon also cordons nodes at risk. Evict also evicts their pods "
            "through the Eviction API once the risk reaches thresholds.evict."
        ),
    )
    paused: bool = Field(False, description="When true, predictions continue but no node is cordoned, drained or uncordoned.")
    node_selector: LabelSelector = Field(
        default_factory=LabelSelector,
        description=(
            "Label selector for the nodes this policy watches (matchLabels / matchExpressions, as in a Deployment). "
            "Empty selects every node."
        ),
    )
    exclude_label: str = Field(
        "ftmoe.io/exclude",
        max_length=317,
        description=(
            'Nodes with this label set to "true" are predicted and annotated but never cordoned, drained or uncordoned '
            "(the per-node opt-out)."
        ),
    )
    interval: Duration = Field(
        30.0,
        description=(
            "How often the policy predicts, as a duration (30s, 1m, 1h30m). It is also the step of the metric windows the "
            "model reads; at least 1s, and at least twice Prometheus' scrape interval for rate() to have two samples."
        ),
        json_schema_extra={"x-kubernetes-validations": [cel("duration(self) >= duration('1s')", "spec.interval must be at least 1s")]},
    )
    horizon: Duration = Field(
        300.0,
        description=(
            "How far ahead a prediction looks: a risk p is the probability of a fault on the node within this time. Used "
            "to turn risk into a failure rate and to grade alarms."
        ),
    )
    prometheus: PrometheusSpec = Field(description="Where and how to read the node metrics the model needs.")
    model: ModelRef = Field(
        default_factory=ModelRef, description=("The fault predictor. Default is the FT-MoE model shipped in the operator's image.")
    )
    thresholds: Thresholds = Field(
        default_factory=Thresholds,
        description=("Risk levels (fault probability within the horizon) for each step; annotate <= cordon <= evict."),
    )
    max_unavailable: IntOrPercent = Field(
        1,
        description=(
            "The disruption budget: at most this many selected nodes (a count, or a percent of the selected nodes, rounded "
            "down) may be unavailable at once. NotReady nodes and nodes cordoned by anyone count against it."
        ),
        json_schema_extra={
            "x-kubernetes-validations": [cel(PERCENT_CEL, "maxUnavailable must be a count >= 0 or a percent from 0% to 100%")]
        },
    )
    storm_breaker: StormBreaker = Field(
        default_factory=StormBreaker,
        description=(
            "Stop all cordons and drains when too many nodes look at risk at once; a cluster-wide cause is likelier than many node faults."
        ),
    )
    hysteresis: Hysteresis = Field(default_factory=Hysteresis, description="How long a risk must hold before acting, both ways.")
    drain: DrainSpec = Field(default_factory=DrainSpec, description="How pods are evicted from a node at risk (mode Evict).")
    escalation: Escalation = Field(
        default_factory=Escalation, description=("Stop acting on a node that keeps coming back, and tell a human.")
    )
    remediation: Remediation | None = Field(
        None,
        description=(
            "Hand nodes that stay at risk after their cordon (and drain), or whose predicted fault arrives, to a "
            "remediator (reboot, replace, fence) by creating an object from a template, as Node Healthcheck does."
        ),
    )
    schedule: list[Window] = Field(
        default_factory=list,
        max_length=20,
        description=(
            "Maintenance windows (disruptions Allowed: new cordons, drains and remediations only inside one) and quiet "
            "windows (Forbidden: none inside it), in cron syntax. Empty: disruptions at any time."
        ),
    )
    maintenance: Maintenance = Field(
        default_factory=Maintenance, description="How to tell a node that another controller is working on (left alone)."
    )
    learning: Learning = Field(
        default_factory=Learning,
        description=(
            "Learning from the cluster: each interval the operator records what it predicted and the fault the cluster "
            "really showed (mapped by labels), keeps it in a bounded buffer under the operator's --state-dir, and grades "
            "its own alarms (status.selfGrading)."
        ),
    )
    cost_model: CostWeights | None = Field(
        None,
        description=(
            "Choose among annotate, cordon, evict and checkpoint-then-evict by the cheapest expected cost L = "
            "resourceWeight x ResourceCost + impactWeight x FaultImpact (in pod-seconds; ResourceCost is what acting "
            "costs, FaultImpact what the fault would cost the pods on the node) instead of thresholds.evict; nodes still "
            "pass the cordon threshold, hysteresis, budget and storm breaker first. The chosen terms appear in the event "
            "and the NodeFaultPrediction."
        ),
    )
    checkpointing: Checkpointing | None = Field(
        None,
        description=(
            "Risk-aware checkpointing for training workloads. The operator writes ftmoe.io/checkpoint-interval-seconds, "
            "ftmoe.io/checkpoint-request and ftmoe.io/checkpoint-reason on the selected pods (which project them through "
            "a downwardAPI volume), and requests a checkpoint before it evicts one."
        ),
    )

    @model_validator(mode="after")
    def _checks(self) -> PolicySpec:
        if self.interval < 1:
            raise ValueError("interval: must be at least 1s")
        if self.horizon < self.interval:
            raise ValueError("horizon: must be at least spec.interval")
        return self

    @property
    def rate_window(self) -> float:
        return self.prometheus.rate_window or max(2 * self.interval, 15.0)

    @classmethod
    def from_dict(cls, spec: dict[str, Any] | None) -> PolicySpec:
        """Parse a spec as the API server stores it; ``PolicyError`` names the field and the fix."""
        return parse(cls, spec or {}, "spec")
