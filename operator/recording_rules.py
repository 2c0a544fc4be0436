"""Prometheus recording rules that keep a policy's features as one series per node and feature.

At thousands of nodes the per-feature queries (rate() over every CPU mode and disk of every
node) cost Prometheus work at every step they are asked for. Recorded, Prometheus evaluates
them once per ``spec.interval`` on its own schedule, and the operator reads every feature in
four queries of ``spec.prometheus.recordedFeatures`` (node_metrics.recorded_query). The
evaluation costs about what the reads save (bench/prometheus_reads.py), so this pays where a
query costs more than its evaluation: a remote or federated Prometheus. The rules are
rendered from the same queries the operator would send (the policy's own, else the
defaults), with the policy's node label and rateWindow, so both paths read the same
numbers; the recorded value at a step is the latest evaluation, at most one interval old.
"""

from __future__ import annotations

from typing import Any

from ftmoe.operator.api.policy_types import PolicySpec
from ftmoe.operator.durations import format_duration
from ftmoe.operator.node_metrics import RECORDED_FEATURE_LABEL, queries_for, render

DEFAULT_SERIES = "ftmoe:node_feature"


class RecordingRulesError(ValueError):
    pass


def rule_groups(spec: PolicySpec, features: list[str], group: str) -> list[dict[str, Any]]:
    """One rule group (Prometheus' rule file format) recording ``features`` for ``spec``."""
    series = spec.prometheus.recorded_features or DEFAULT_SERIES
    queries, missing = queries_for(features, spec.prometheus)
    if missing:
        raise RecordingRulesError(
            f"no query for model features {', '.join(missing)}: add them under spec.prometheus.queries (nothing is recorded "
            "for a feature the operator could not read either)"
        )
    rules = [
        {
            "record": series,
            "expr": render(queries[name], spec.prometheus.node_label, None, spec.rate_window),
            "labels": {RECORDED_FEATURE_LABEL: name},
        }
        for name in features
    ]
    return [{"name": group, "interval": format_duration(spec.interval), "rules": rules}]


def rule_file(spec: PolicySpec, features: list[str], group: str) -> dict[str, Any]:
    """A file for Prometheus' ``rule_files``."""
    return {"groups": rule_groups(spec, features, group)}


def prometheus_rule(spec: PolicySpec, features: list[str], group: str, namespace: str) -> dict[str, Any]:
    """The same groups as a Prometheus Operator PrometheusRule object."""
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": group, "namespace": namespace, "labels": {"app.kubernetes.io/name": "ftmoe-operator"}},
        "spec": {"groups": rule_groups(spec, features, group)},
    }
