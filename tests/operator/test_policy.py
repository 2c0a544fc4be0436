"""PolicySpec: the CRD generated from it, its defaults, and errors that name the field."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from ftmoe.operator.api import crds
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


def test_committed_crds_are_the_generated_ones() -> None:
    """A field is declared once, in operator/api/; `ftmoe crds generate` writes crds/ from it."""
    assert crds.stale(CRD.parent) == [], "crds/ is out of date: run `ftmoe crds generate` and commit the result"
    chart = CRD.parents[1] / "deploy" / "helm" / "ftmoe-operator" / "crds"
    assert crds.stale(chart) == [], "the Helm chart's crds/ is out of date: run `ftmoe crds generate` (it writes both)"
    assert sorted(p.name for p in chart.iterdir()) == sorted(crds.generate()), "the chart's crds/ holds the CRDs and nothing else"


def test_a_partial_spec_gets_the_crd_defaults_in_python_units() -> None:
    doc = yaml.safe_load(CRD.read_text())["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    spec = PolicySpec.from_dict(
        {
            "prometheus": {"url": "http://p:9090"},
            "costModel": {},
            "checkpointing": {"podSelector": {"matchLabels": {"ftmoe.io/training": "true"}}},
        }
    )
    assert spec.interval == parse_duration(doc["properties"]["interval"]["default"]) == 30
    assert spec.hysteresis.healthy_for == parse_duration(doc["properties"]["hysteresis"]["properties"]["healthyFor"]["default"])
    assert spec.escalation.window == 86400 and spec.learning.retention == 48 * 3600
    assert spec.checkpointing is not None and spec.checkpointing.node_mtbf == 720 * 3600 and spec.checkpointing.cost == 150
    assert spec.cost_model is not None and spec.cost_model.fault_seconds == 410 and spec.cost_model.restart_seconds == 60
    assert spec.thresholds.model_dump() == {"annotate": 0.3, "cordon": 0.6, "evict": 0.8}
    assert spec.storm_breaker.max_at_risk == "30%" and spec.max_unavailable == 1 and spec.rate_window == 60


def test_the_wire_form_round_trips() -> None:
    wire = {
        "prometheus": {"url": "http://p", "bearerTokenSecret": {"name": "s"}},
        "interval": "1m",
        "mode": "Cordon",
        "hysteresis": {"riskFor": "0s"},
        "checkpointing": {"podSelector": {"matchLabels": {"a": "b"}}, "nodeMTBF": "100h"},
    }
    spec = PolicySpec.from_dict(wire)
    again = PolicySpec.from_dict(spec.model_dump(mode="json", by_alias=True, exclude_none=True))
    assert again == spec and again.checkpointing is not None and again.checkpointing.node_mtbf == 360000
    assert spec.prometheus.bearer_token_secret is not None and spec.prometheus.bearer_token_secret.key == "token"


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
    def capacity(value: object) -> float:
        cm = PolicySpec.from_dict({"prometheus": {"url": "http://p"}, "costModel": {"capacityCostPerCore": value}}).cost_model
        assert cm is not None
        return cm.capacity_seconds

    assert capacity(3000) == 3000 and capacity(2.5) == 2.5
    for bad in (-1, "50m"):  # the API server refuses a string here too (tests/operator/test_spec_parser_agrees.py)
        with pytest.raises(PolicyError, match="capacityCostPerCore"):
            capacity(bad)


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({}, "spec.prometheus.url"),
        ({"prometheus": {"url": "http://p"}, "mode": "Destroy"}, "spec.mode"),
        ({"prometheus": {"url": "http://p"}, "thresholds": {"annotate": 0.9, "cordon": 0.5}}, "spec.thresholds"),
        ({"prometheus": {"url": "http://p"}, "interval": "5 minutes"}, "spec.interval"),
        ({"prometheus": {"url": "http://p"}, "maxUnavailable": "ten"}, "spec.maxUnavailable"),
        ({"prometheus": {"url": "http://p"}, "model": {"source": "Path"}}, "spec.model.path"),
        ({"prometheus": {"url": "http://p"}, "hysteresis": {"riskFor": "-1m"}}, "spec.hysteresis.riskFor"),
        ({"prometheus": {"url": "http://p"}, "checkpointing": {"podSelector": {}}}, "spec.checkpointing.podSelector"),
        (
            {"prometheus": {"url": "http://p"}, "checkpointing": {"podSelector": {"matchLabels": {"a": "b"}}, "policy": "Often"}},
            "spec.checkpointing.policy",
        ),
        ({"prometheus": {"url": "http://p"}, "paused": "false"}, "spec.paused"),  # bool("false") would be True
        (
            {"prometheus": {"url": "http://p"}, "nodeSelector": {"matchExpressions": [{"key": "k", "operator": "Bogus"}]}},
            "spec.nodeSelector.matchExpressions[0].operator",
        ),
        ({"prometheus": {"url": "http://p"}, "costModel": {"impactWeight": float("nan")}}, "spec.costModel.impactWeight"),
        ({"prometheus": {"url": "http://p"}, "interval": "99999999h"}, "spec.interval"),
        ({"prometheus": {"url": "http://p"}, "interval": "10m"}, "spec.horizon"),
        ({"prometheus": {"url": "http://p"}, "maxUnavailable": True}, "spec.maxUnavailable"),
        ({"prometheus": {"url": "http://p"}, "drain": {"timout": "1m"}}, "spec.drain.timout"),
        ({"prometheus": {"url": "http://p"}, "drain": {"force": True, "timeout": "0s"}}, "spec.drain.timeout"),
    ],
)
def test_bad_fields_are_named(spec: dict[str, Any], field: str) -> None:
    with pytest.raises(PolicyError, match=re.escape(field)):
        PolicySpec.from_dict(spec)


def test_durations_and_counts() -> None:
    assert parse_duration("1h30m") == 5400 and parse_duration("500ms") == 0.5 and parse_duration("0") == 0
    assert format_duration(5400) == "1h30m" and format_duration(15) == "15s"
    with pytest.raises(ValueError, match="spec.x"):
        parse_duration("1d", "spec.x")
    assert resolve_count("25%", 16, "f") == 4 and resolve_count("10%", 16, "f") == 1 and resolve_count(3, 16, "f") == 3
    assert resolve_count("5%", 16, "f") == 0  # rounded down: a budget never grows by rounding


def test_node_selector() -> None:
    spec = PolicySpec.from_dict(
        {
            "prometheus": {"url": "http://p"},
            "nodeSelector": {
                "matchLabels": {"pool": "gpu"},
                "matchExpressions": [
                    {"key": "zone", "operator": "In", "values": ["a", "b"]},
                    {"key": "node-role.kubernetes.io/control-plane", "operator": "DoesNotExist"},
                ],
            },
        }
    )
    assert node_selected({"pool": "gpu", "zone": "a"}, spec)
    assert not node_selected({"pool": "gpu", "zone": "c"}, spec)
    assert not node_selected({"pool": "cpu", "zone": "a"}, spec)
    assert not node_selected({"pool": "gpu", "zone": "a", "node-role.kubernetes.io/control-plane": ""}, spec)
