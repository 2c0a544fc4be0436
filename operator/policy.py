"""FaultTolerancePolicy spec as typed data, with the same defaults as the CRD.

The API server applies the CRD's defaults and validation before the operator sees a
policy; ``PolicySpec.from_dict`` applies them again so that handlers and tests can work
from a partial spec, and raises ``PolicyError`` naming the field for anything the
schema cannot catch (a duration that is too short for Prometheus' scrape, say).
tests/operator/test_policy.py checks that these defaults equal the CRD's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

from ftmoe.operator.checkpoint_policy import POLICIES, CheckpointSpec
from ftmoe.operator.costs import CostWeights
from ftmoe.operator.durations import parse_duration
from ftmoe.operator.learning.ground_truth import DEFAULT_LABELS

GROUP = "ftmoe.io"
VERSION = "v1alpha1"
POLICY_PLURAL = "faulttolerancepolicies"
PREDICTION_PLURAL = "nodefaultpredictions"

Mode = Literal["Observe", "Cordon", "Evict"]
MODES: tuple[str, ...] = ("Observe", "Cordon", "Evict")


class PolicyError(ValueError):
    """A policy field the operator cannot use; the message names the field and the fix."""


@dataclass(frozen=True)
class Thresholds:
    annotate: float = 0.3
    cordon: float = 0.6
    evict: float = 0.8


@dataclass(frozen=True)
class PrometheusSpec:
    url: str
    node_label: str = "node"
    rate_window: float | None = None  # seconds; None -> max(2 x interval, 15s)
    timeout: float = 10.0
    insecure_skip_verify: bool = False
    ca_file: str | None = None
    bearer_token_file: str | None = None
    bearer_token_secret: tuple[str, str] | None = None  # (name, key) in the operator's namespace
    queries: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelRef:
    source: Literal["Default", "Path", "ConfigMap"] = "Default"
    path: str | None = None
    config_map: tuple[str, str] | None = None  # (namespace, name)

    def key(self) -> str:
        return f"{self.source}:{self.path or ''}:{'/'.join(self.config_map or ())}"


@dataclass(frozen=True)
class DrainSpec:
    timeout: float = 600.0
    grace_period_seconds: int = -1
    force: bool = False


@dataclass(frozen=True)
class Checkpointing:
    """spec.checkpointing: which pods train, and the knobs of the interval policy."""

    match_labels: dict[str, str]
    match_expressions: tuple[dict[str, Any], ...]
    policy: CheckpointSpec
    ack_timeout: float = 120.0


@dataclass(frozen=True)
class PolicySpec:
    prometheus: PrometheusSpec
    mode: Mode = "Observe"
    paused: bool = False
    match_labels: dict[str, str] = field(default_factory=dict)
    match_expressions: tuple[dict[str, Any], ...] = ()
    exclude_label: str = "ftmoe.io/exclude"
    interval: float = 30.0
    horizon: float = 300.0
    model: ModelRef = ModelRef()
    thresholds: Thresholds = Thresholds()
    max_unavailable: int | str = 1
    storm_max_at_risk: int | str = "30%"
    risk_for: float = 60.0
    healthy_for: float = 600.0
    drain: DrainSpec = DrainSpec()
    max_cordons_per_node: int = 3
    escalation_window: float = 86400.0
    checkpointing: Checkpointing | None = None
    cost_model: CostWeights | None = None
    learning_labels: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_LABELS))
    buffer_intervals: int = 2880
    retention: float = 48 * 3600.0
    tune_every: int = 120
    tune_epochs: int = 4
    holdout: float = 0.2

    @property
    def rate_window(self) -> float:
        return self.prometheus.rate_window or max(2 * self.interval, 15.0)

    @classmethod
    def from_dict(cls, spec: dict[str, Any]) -> PolicySpec:
        try:
            return cls._from_dict(dict(spec or {}))
        except PolicyError:
            raise
        except (ValueError, TypeError, KeyError) as err:  # durations, numbers: the message names the field
            raise PolicyError(str(err)) from err

    @classmethod
    def _from_dict(cls, spec: dict[str, Any]) -> PolicySpec:
        prom = spec.get("prometheus") or {}
        if not prom.get("url"):
            raise PolicyError("spec.prometheus.url is required: the base URL of the Prometheus HTTP API, e.g. http://prometheus:9090")
        secret = prom.get("bearerTokenSecret")
        selector = spec.get("nodeSelector") or {}
        model = spec.get("model") or {}
        th = spec.get("thresholds") or {}
        hyst = spec.get("hysteresis") or {}
        drain = spec.get("drain") or {}
        esc = spec.get("escalation") or {}
        cm = model.get("configMap")
        mode = spec.get("mode", "Observe")
        if mode not in MODES:
            raise PolicyError(f"spec.mode: {mode!r} is not one of {', '.join(MODES)}")
        thresholds = Thresholds(float(th.get("annotate", 0.3)), float(th.get("cordon", 0.6)), float(th.get("evict", 0.8)))
        if not 0 <= thresholds.annotate <= thresholds.cordon <= thresholds.evict <= 1:
            raise PolicyError("spec.thresholds: must satisfy 0 <= annotate <= cordon <= evict <= 1")
        result = cls(
            prometheus=PrometheusSpec(
                url=str(prom["url"]).rstrip("/"),
                node_label=prom.get("nodeLabel", "node"),
                rate_window=parse_duration(prom["rateWindow"], "spec.prometheus.rateWindow") if prom.get("rateWindow") else None,
                timeout=parse_duration(prom.get("timeout", "10s"), "spec.prometheus.timeout"),
                insecure_skip_verify=bool(prom.get("insecureSkipVerify", False)),
                ca_file=prom.get("caFile"),
                bearer_token_file=prom.get("bearerTokenFile"),
                bearer_token_secret=(secret["name"], secret.get("key", "token")) if secret else None,
                queries=dict(prom.get("queries") or {}),
            ),
            mode=mode,
            paused=bool(spec.get("paused", False)),
            match_labels=dict(selector.get("matchLabels") or {}),
            match_expressions=tuple(selector.get("matchExpressions") or ()),
            exclude_label=spec.get("excludeLabel", "ftmoe.io/exclude"),
            interval=parse_duration(spec.get("interval", "30s"), "spec.interval"),
            horizon=parse_duration(spec.get("horizon", "5m"), "spec.horizon"),
            model=ModelRef(model.get("source", "Default"), model.get("path"), (cm["namespace"], cm["name"]) if cm else None),
            thresholds=thresholds,
            max_unavailable=spec.get("maxUnavailable", 1),
            storm_max_at_risk=(spec.get("stormBreaker") or {}).get("maxAtRisk", "30%"),
            risk_for=parse_duration(hyst.get("riskFor", "1m"), "spec.hysteresis.riskFor"),
            healthy_for=parse_duration(hyst.get("healthyFor", "10m"), "spec.hysteresis.healthyFor"),
            drain=DrainSpec(
                timeout=parse_duration(drain.get("timeout", "10m"), "spec.drain.timeout"),
                grace_period_seconds=int(drain.get("gracePeriodSeconds", -1)),
                force=bool(drain.get("force", False)),
            ),
            max_cordons_per_node=int(esc.get("maxCordonsPerNode", 3)),
            escalation_window=parse_duration(esc.get("window", "24h"), "spec.escalation.window"),
            checkpointing=parse_checkpointing(spec["checkpointing"]) if spec.get("checkpointing") else None,
            cost_model=parse_cost_model(spec["costModel"]) if spec.get("costModel") is not None else None,
            learning_labels=dict((spec.get("learning") or {}).get("labels") or DEFAULT_LABELS),
            buffer_intervals=int((spec.get("learning") or {}).get("bufferIntervals", 2880)),
            retention=parse_duration((spec.get("learning") or {}).get("retention", "48h"), "spec.learning.retention"),
            tune_every=int((spec.get("learning") or {}).get("tuneEvery", 120)),
            tune_epochs=int((spec.get("learning") or {}).get("tuneEpochs", 4)),
            holdout=float((spec.get("learning") or {}).get("holdout", 0.2)),
        )
        resolve_count(result.max_unavailable, 100, "spec.maxUnavailable")
        resolve_count(result.storm_max_at_risk, 100, "spec.stormBreaker.maxAtRisk")
        if result.interval < 1:
            raise PolicyError("spec.interval: must be at least 1s")
        if result.model.source == "Path" and not result.model.path:
            raise PolicyError("spec.model.path is required when spec.model.source is Path")
        if result.model.source == "ConfigMap" and not result.model.config_map:
            raise PolicyError("spec.model.configMap is required when spec.model.source is ConfigMap")
        return result


def parse_cost_model(cm: dict[str, Any]) -> CostWeights:
    return CostWeights(
        resource=float(cm.get("resourceWeight", 1.0)), impact=float(cm.get("impactWeight", 1.0)),
        restart_seconds=parse_duration(cm.get("podRestartTime", "30s"), "spec.costModel.podRestartTime"),
        fault_seconds=parse_duration(cm.get("faultDowntime", "10m"), "spec.costModel.faultDowntime"),
        capacity_seconds=pod_seconds(cm.get("capacityCostPerCore", 0), "spec.costModel.capacityCostPerCore"),
    )


def pod_seconds(value: Any, field: str) -> float:
    """A cost in pod-seconds: a number (a duration string such as "3000s", as 0.1 wrote it, is read too)."""
    if isinstance(value, str):
        return parse_duration(value, field)
    try:
        number = float(value)
    except (TypeError, ValueError) as err:
        raise PolicyError(f"{field}: {value!r} is not a number of pod-seconds (e.g. 3000)") from err
    if number < 0:
        raise PolicyError(f"{field}: {number:g} is negative; give 0 or more pod-seconds")
    return number


def parse_checkpointing(cp: dict[str, Any]) -> Checkpointing:
    def dur(key: str, default: str) -> float:
        return parse_duration(cp.get(key, default), f"spec.checkpointing.{key}")

    policy = cp.get("policy", "RiskAware")
    if policy not in POLICIES:
        raise PolicyError(f"spec.checkpointing.policy: {policy!r} is not one of {', '.join(POLICIES)}")
    selector = cp.get("podSelector") or {}
    if not selector.get("matchLabels") and not selector.get("matchExpressions"):
        raise PolicyError("spec.checkpointing.podSelector must select something (matchLabels or matchExpressions); "
                          "an empty selector would treat every pod as a training job")
    spec = CheckpointSpec(
        policy=policy, cost=dur("checkpointCost", "150s"), persist=dur("persistTime", "0s"),
        fixed_interval=dur("fixedInterval", "30m"), min_interval=dur("minInterval", "5m"), max_interval=dur("maxInterval", "4h"),
        node_mtbf=dur("nodeMTBF", "720h"), recall=float(cp.get("recall", 0.9)), precision=float(cp.get("precision", 0.8)),
            lead=dur("leadTime", "2m"),
        alpha=float(cp.get("alpha", 6)), beta=float(cp.get("beta", 1)), min_change=float(cp.get("minChange", 0.2)),
        cooldown=dur("cooldown", "10m"),
    )
    if spec.min_interval > spec.max_interval:
        raise PolicyError("spec.checkpointing.minInterval must not exceed spec.checkpointing.maxInterval")
    return Checkpointing(dict(selector.get("matchLabels") or {}), tuple(selector.get("matchExpressions") or ()), spec,
                         dur("ackTimeout", "2m"))


def resolve_count(value: int | str, total: int, field_name: str) -> int:
    """A count or a percent of ``total`` (rounded down: a budget never grows by rounding)."""
    if isinstance(value, bool):
        raise PolicyError(f"{field_name}: expected a count or a percent such as 10%, got {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise PolicyError(f"{field_name}: must be >= 0, got {value}")
        return value
    text = str(value).strip()
    if text.endswith("%") and text[:-1].isdigit() and 0 <= int(text[:-1]) <= 100:
        return math.floor(int(text[:-1]) * total / 100)
    if text.isdigit():
        return int(text)
    raise PolicyError(f"{field_name}: {value!r} is neither a count nor a percent; write 2 or 10%")


def node_selected(labels: dict[str, str], spec: PolicySpec) -> bool:
    """Whether a node with these labels matches the policy's nodeSelector."""
    return selector_matches(labels, spec.match_labels, spec.match_expressions)


def selector_matches(labels: dict[str, str], match_labels: dict[str, str], match_expressions: tuple[dict[str, Any], ...]) -> bool:
    """A Kubernetes LabelSelector (matchLabels and matchExpressions) against a label set."""
    if any(labels.get(k) != v for k, v in match_labels.items()):
        return False
    for expr in match_expressions:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        present = key in labels
        if op == "In" and not (present and labels[key] in values):
            return False
        if op == "NotIn" and present and labels[key] in values:
            return False
        if op == "Exists" and not present:
            return False
        if op == "DoesNotExist" and present:
            return False
    return True
