"""PolicySpec: the same defaults as the CRD, and errors that name the field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from ftmoe.operator.durations import format_duration, parse_duration
from ftmoe.operator.policy import PolicyError, PolicySpec, node_selected, resolve_count

CRD = Path(__file__).resolve().parents[2] / "crds" / "ftmoe.io_faulttolerancepolicies.yaml"


def crd_spec_schema() -> dict[str, Any]:
    doc = yaml.safe_load(CRD.read_text())
    return doc["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]


def defaults(schema: dict[str, Any], path: str = "") -> dict[str, Any]:
    """Every leaf default in the schema, by dotted path."""
    out: dict[str, Any] = {}
    for name, sub in (schema.get("properties") or {}).items():
        p = f"{path}.{name}" if path else name
        if "default" in sub and not isinstance(sub["default"], dict):
            out[p] = sub["default"]
        out.update(defaults(sub, p))
    return out


def test_python_defaults_equal_the_crd_defaults() -> None:
    spec = PolicySpec.from_dict({"prometheus": {"url": "http://p:9090"},
                                 "checkpointing": {"podSelector": {"matchLabels": {"ftmoe.io/training": "true"}}},
                                 "costModel": {}})
    assert spec.checkpointing is not None
    cp, ck, cm = spec.checkpointing.policy, spec.checkpointing, spec.cost_model
    assert cm is not None
    seen = defaults(crd_spec_schema())
    as_python = {
        "mode": spec.mode, "paused": spec.paused, "excludeLabel": spec.exclude_label,
        "interval": spec.interval, "horizon": spec.horizon,
        "prometheus.nodeLabel": spec.prometheus.node_label, "prometheus.timeout": spec.prometheus.timeout,
        "prometheus.insecureSkipVerify": spec.prometheus.insecure_skip_verify,
        "prometheus.bearerTokenSecret.key": "token",
        "model.source": spec.model.source,
        "thresholds.annotate": spec.thresholds.annotate, "thresholds.cordon": spec.thresholds.cordon,
        "thresholds.evict": spec.thresholds.evict, "maxUnavailable": spec.max_unavailable,
        "stormBreaker.maxAtRisk": spec.storm_max_at_risk, "hysteresis.riskFor": spec.risk_for,
        "hysteresis.healthyFor": spec.healthy_for, "drain.timeout": spec.drain.timeout,
        "drain.gracePeriodSeconds": spec.drain.grace_period_seconds, "drain.force": spec.drain.force,
        "escalation.maxCordonsPerNode": spec.max_cordons_per_node, "escalation.window": spec.escalation_window,
        "checkpointing.policy": cp.policy, "checkpointing.checkpointCost": cp.cost, "checkpointing.persistTime": cp.persist,
        "checkpointing.fixedInterval": cp.fixed_interval, "checkpointing.minInterval": cp.min_interval,
        "checkpointing.maxInterval": cp.max_interval, "checkpointing.nodeMTBF": cp.node_mtbf,
        "checkpointing.recall": cp.recall, "checkpointing.leadTime": cp.lead, "checkpointing.precision": cp.precision,
            "checkpointing.alpha": cp.alpha,
        "checkpointing.beta": cp.beta, "checkpointing.minChange": cp.min_change, "checkpointing.cooldown": cp.cooldown,
        "checkpointing.ackTimeout": ck.ack_timeout,
        "costModel.resourceWeight": cm.resource, "costModel.impactWeight": cm.impact,
        "costModel.podRestartTime": cm.restart_seconds, "costModel.faultDowntime": cm.fault_seconds,
        "costModel.capacityCostPerCore": cm.capacity_seconds,
        "learning.bufferIntervals": spec.buffer_intervals, "learning.retention": spec.retention,
        "learning.tuneEvery": spec.tune_every, "learning.tuneEpochs": spec.tune_epochs, "learning.holdout": spec.holdout,
    }
    assert set(seen) == set(as_python), "a CRD default without a Python twin, or the other way round"
    for path, crd_value in seen.items():
        durations = {"interval", "horizon", "prometheus.timeout", "hysteresis.riskFor", "hysteresis.healthyFor",
                     "drain.timeout", "escalation.window", "checkpointing.checkpointCost", "checkpointing.persistTime",
                     "checkpointing.fixedInterval", "checkpointing.minInterval", "checkpointing.maxInterval",
                     "checkpointing.nodeMTBF", "checkpointing.cooldown", "checkpointing.ackTimeout",
                     "checkpointing.leadTime", "costModel.podRestartTime", "costModel.faultDowntime",
                     "learning.retention"}
        expected = parse_duration(crd_value) if path in durations else crd_value
        assert as_python[path] == expected, path


def test_every_schema_field_has_a_description() -> None:
    missing: list[str] = []

    def walk(node: dict[str, Any], path: str) -> None:
        for name, sub in (node.get("properties") or {}).items():
            if "description" not in sub and name not in ("metadata",):
                missing.append(f"{path}.{name}")
            walk(sub, f"{path}.{name}")
        if "items" in node:
            walk(node["items"], path + "[]")

    for crd in CRD.parent.glob("ftmoe.io_*.yaml"):
        schema = yaml.safe_load(crd.read_text())["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        walk(schema, crd.stem)
    assert missing == []


def test_kubectl_explain_shows_every_default_and_no_internal_jargon() -> None:
    """`kubectl explain` prints descriptions, not the schema's `default`, so each says it."""
    schema = crd_spec_schema()
    silent = []
    for path in defaults(schema):
        node = schema
        for part in path.split("."):
            node = node["properties"][part]
        if "default" not in node["description"].lower():
            silent.append(path)
    assert silent == []
    assert "seed" not in CRD.read_text(), "the project's planning words do not belong in a user API"


def test_capacity_cost_is_a_number_of_pod_seconds() -> None:
    from ftmoe.operator.policy import parse_cost_model

    assert parse_cost_model({"capacityCostPerCore": 3000}).capacity_seconds == 3000
    assert parse_cost_model({"capacityCostPerCore": "50m"}).capacity_seconds == 3000  # 0.1's duration strings still read
    with pytest.raises(PolicyError, match="capacityCostPerCore"):
        parse_cost_model({"capacityCostPerCore": -1})


@pytest.mark.parametrize(("spec", "field"), [
    ({}, "spec.prometheus.url"),
    ({"prometheus": {"url": "http://p"}, "mode": "Destroy"}, "spec.mode"),
    ({"prometheus": {"url": "http://p"}, "thresholds": {"annotate": 0.9, "cordon": 0.5}}, "spec.thresholds"),
    ({"prometheus": {"url": "http://p"}, "interval": "5 minutes"}, "spec.interval"),
    ({"prometheus": {"url": "http://p"}, "maxUnavailable": "ten"}, "spec.maxUnavailable"),
    ({"prometheus": {"url": "http://p"}, "model": {"source": "Path"}}, "spec.model.path"),
    ({"prometheus": {"url": "http://p"}, "hysteresis": {"riskFor": "-1m"}}, "spec.hysteresis.riskFor"),
    ({"prometheus": {"url": "http://p"}, "checkpointing": {"podSelector": {}}}, "spec.checkpointing.podSelector"),
    ({"prometheus": {"url": "http://p"}, "checkpointing": {"podSelector": {"matchLabels": {"a": "b"}}, "policy": "Often"}},
     "spec.checkpointing.policy"),
])
def test_bad_fields_are_named(spec: dict[str, Any], field: str) -> None:
    with pytest.raises(PolicyError, match=field.replace(".", r"\.")):
        PolicySpec.from_dict(spec)


def test_durations_and_counts() -> None:
    assert parse_duration("1h30m") == 5400 and parse_duration("500ms") == 0.5 and parse_duration("0") == 0
    assert format_duration(5400) == "1h30m" and format_duration(15) == "15s"
    with pytest.raises(ValueError, match="spec.x"):
        parse_duration("1d", "spec.x")
    assert resolve_count("25%", 16, "f") == 4 and resolve_count("10%", 16, "f") == 1 and resolve_count(3, 16, "f") == 3
    assert resolve_count("5%", 16, "f") == 0  # rounded down: a budget never grows by rounding


def test_node_selector() -> None:
    spec = PolicySpec.from_dict({"prometheus": {"url": "http://p"}, "nodeSelector": {
        "matchLabels": {"pool": "gpu"},
        "matchExpressions": [{"key": "zone", "operator": "In", "values": ["a", "b"]},
                             {"key": "node-role.kubernetes.io/control-plane", "operator": "DoesNotExist"}]}})
    assert node_selected({"pool": "gpu", "zone": "a"}, spec)
    assert not node_selected({"pool": "gpu", "zone": "c"}, spec)
    assert not node_selected({"pool": "cpu", "zone": "a"}, spec)
    assert not node_selected({"pool": "gpu", "zone": "a", "node-role.kubernetes.io/control-plane": ""}, spec)
