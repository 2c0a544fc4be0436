"""The operator's own parser is as strict as the API server: the same specs, the same verdict.

Random mutations of a valid spec (wrong types, quoted booleans, out-of-range numbers, bad
durations and percents, unknown fields, broken selectors, nulls) go to the real API server
as server-side dry runs with strict field validation (what kubectl does), and to
``PolicySpec.from_dict``. The API server's verdict is the reference: every spec it accepts
the operator must read, and every spec it refuses the operator must refuse too (for anyone
running without the CRD's validation, and because the operator acts on what it parses).
"""

from __future__ import annotations

import copy
import json
import os
import random
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from ftmoe.cluster.operator_access import apply_operator_manifests
from ftmoe.operator.api import crds
from ftmoe.operator.policy import PolicyError, PolicySpec

pytestmark = pytest.mark.cluster
SPECS = int(os.environ.get("FTMOE_AGREE_SPECS", "400"))  # a longer run: FTMOE_AGREE_SPECS=5000

BASE: dict[str, Any] = {
    "prometheus": {"url": "http://prom:9090", "queries": {"cpu_utilisation": "avg by (node) (x{{node}})"}},
    "nodeSelector": {"matchLabels": {"pool": "gpu"}, "matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]},
    "checkpointing": {"podSelector": {"matchLabels": {"ftmoe.io/training": "true"}}},
    "costModel": {},
    "remediation": {"templates": [{"apiVersion": "r.example.io/v1", "kind": "RebootTemplate", "name": "t", "namespace": "r"}]},
    "stormBreaker": {"maxActedOn": 2, "latch": True},
}

VALUES: list[Any] = [
    "false",
    "true",
    "5m",
    "0s",
    "1s",
    "500ms",
    "-1m",
    "99999999h",
    "10%",
    "150%",
    "3",
    "abc",
    "",
    "In",
    "Bogus",
    -1,
    0,
    1,
    3,
    10,
    5000,
    0.05,
    0.5,
    1.5,
    -0.1,
    True,
    False,
    None,
    [],
    ["a"],
    {},
    {"x": "y"},
    {"bogus": 1},
]


def leaf_paths(schema: dict[str, Any], prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], dict[str, Any]]:
    out: dict[tuple[str, ...], dict[str, Any]] = {}
    for name, sub in (schema.get("properties") or {}).items():
        out[(*prefix, name)] = sub
        out.update(leaf_paths(sub, (*prefix, name)))
    return out


def plausible(rng: random.Random, schema: dict[str, Any]) -> Any:
    """A value of the right type, often but not always in range."""
    if "enum" in schema:
        return rng.choice(schema["enum"])
    kind = schema.get("type")
    if kind == "string" and "pattern" in schema and "ms|s|m|h" in schema["pattern"]:
        return rng.choice(["0s", "1s", "30s", "2m", "10m", "1h30m", "48h"])
    if kind == "integer":
        return rng.choice([-1, 0, 1, 2, 5, 20, 3000])
    if kind == "number":
        return rng.choice([0.0, 0.05, 0.3, 0.7, 0.9, 1.0, 2.0])
    if kind == "boolean":
        return rng.choice([True, False])
    if schema.get("x-kubernetes-int-or-string"):
        return rng.choice([0, 2, "0%", "25%", "100%", "101%"])
    return schema.get("default", rng.choice(VALUES))


def mutate(rng: random.Random, paths: dict[tuple[str, ...], dict[str, Any]]) -> dict[str, Any]:
    spec = copy.deepcopy(BASE)
    for _ in range(rng.choice([1, 1, 2, 3])):
        path = rng.choice(sorted(paths))
        value = plausible(rng, paths[path]) if rng.random() < 0.6 else rng.choice(VALUES)
        if rng.random() < 0.05:
            path = (*path[:-1], "unknownField")
        node = spec
        for part in path[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        node[path[-1]] = copy.deepcopy(value)
    if rng.random() < 0.15:
        spec["nodeSelector"] = {
            "matchExpressions": [
                {"key": "k", "operator": rng.choice(["In", "Exists", "Bogus"]), **({"values": ["v"]} if rng.random() < 0.5 else {})}
            ]
        }
    return spec


def server_verdict(api: client.ApiClient, spec: dict[str, Any], name: str) -> str | None:
    """None when the API server accepts the spec, else its message."""
    body = {"apiVersion": "ftmoe.io/v1alpha1", "kind": "FaultTolerancePolicy", "metadata": {"name": name}, "spec": spec}
    try:
        client.CustomObjectsApi(api).create_cluster_custom_object(
            "ftmoe.io", "v1alpha1", "faulttolerancepolicies", body, dry_run="All", field_validation="Strict"
        )
    except ApiException as err:
        if err.status not in (400, 422):
            raise
        return str(json.loads(err.body).get("message", err.body))
    return None


def python_verdict(spec: dict[str, Any]) -> str | None:
    try:
        PolicySpec.from_dict(copy.deepcopy(spec))
    except PolicyError as err:
        return str(err)
    return None


def test_the_parser_and_the_api_server_agree_on_random_specs(api_client: Any, kubectl: Any) -> None:
    apply_operator_manifests(kubectl)
    schema = yaml.safe_load(crds.generate()["ftmoe.io_faulttolerancepolicies.yaml"])
    spec_schema = schema["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    paths = leaf_paths(spec_schema)
    rng = random.Random(int(os.environ.get("FTMOE_AGREE_SEED", "20261201")))
    disagreements, refused = [], 0
    for i in range(SPECS):
        spec = mutate(rng, paths)
        server, ours = server_verdict(api_client, spec, f"agree-{i}"), python_verdict(spec)
        refused += server is not None
        if (server is None) != (ours is None):
            disagreements.append(f"{json.dumps(spec)}\n  API server: {server or 'accepted'}\n  operator: {ours or 'accepted'}")
    assert disagreements == [], f"{len(disagreements)} of {SPECS} specs judged differently:\n" + "\n".join(disagreements[:8])
    print(f"{SPECS} specs, {refused} refused by the API server, {len(disagreements)} judged differently")
    assert SPECS // 4 < refused < SPECS - SPECS // 10, f"the mutations should mix valid and invalid specs ({refused} refused)"
