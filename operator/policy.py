"""The FaultTolerancePolicy as the operator uses it: the typed spec and label selectors.

The spec's fields, defaults and validation live in ``operator/api/policy_types.py``, the
one source the CRD is generated from; ``PolicySpec.from_dict`` applies the same defaults
and rules to a partial spec (handlers, tests, anyone running without the CRD) and raises
``PolicyError`` naming the field.
"""

from __future__ import annotations

import math

from ftmoe.operator.api.crds import GROUP, VERSION
from ftmoe.operator.api.errors import PolicyError
from ftmoe.operator.api.policy_types import (
    MODES,
    Checkpointing,
    DrainSpec,
    LabelSelector,
    Mode,
    ModelRef,
    PolicySpec,
    PrometheusSpec,
    Thresholds,
)

__all__ = [
    "GROUP",
    "MODES",
    "POLICY_PLURAL",
    "PREDICTION_PLURAL",
    "VERSION",
    "Checkpointing",
    "DrainSpec",
    "LabelSelector",
    "Mode",
    "ModelRef",
    "PolicyError",
    "PolicySpec",
    "PrometheusSpec",
    "Thresholds",
    "node_selected",
    "resolve_count",
    "selector_matches",
]

POLICY_PLURAL = "faulttolerancepolicies"
PREDICTION_PLURAL = "nodefaultpredictions"


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
    return selector_matches(labels, spec.node_selector)


def selector_matches(labels: dict[str, str], selector: LabelSelector) -> bool:
    """A Kubernetes LabelSelector (matchLabels and matchExpressions) against a label set."""
    if any(labels.get(k) != v for k, v in selector.match_labels.items()):
        return False
    for expr in selector.match_expressions:
        key, op, values = expr.key, expr.operator, expr.values or []
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
