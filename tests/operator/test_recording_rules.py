"""`ftmoe operator recording-rules`: the rules are the operator's own feature queries, and
Prometheus' promtool accepts them (the live check is in test_operator_e2e.py)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ftmoe.contract.features import FEATURE_NAMES
from ftmoe.operator.api.policy_types import PolicySpec
from ftmoe.operator.recording_rules import RecordingRulesError, prometheus_rule, rule_file

FTMOE = str(Path(sys.executable).parent / "ftmoe")

SPEC = {
    "interval": "30s",
    "prometheus": {
        "url": "http://prometheus:9090",
        "nodeLabel": "kubernetes_node",
        "rateWindow": "2m",
        "recordedFeatures": "team:node_feature",
        "queries": {"running_containers": "sum by (node) (my_containers{{node}})"},
    },
}


def test_one_rule_per_feature_from_the_policys_own_queries_node_label_window_and_interval() -> None:
    spec = PolicySpec.from_dict(SPEC)
    (group,) = rule_file(spec, list(FEATURE_NAMES), "ftmoe-p")["groups"]
    assert group["name"] == "ftmoe-p" and group["interval"] == "30s"
    rules = {r["labels"]["feature"]: r for r in group["rules"]}
    assert sorted(rules) == sorted(FEATURE_NAMES) and all(r["record"] == "team:node_feature" for r in rules.values())
    cpu = rules["cpu_utilisation"]["expr"]
    assert 'kubernetes_node!=""' in cpu and "[2m]" in cpu and "by (kubernetes_node)" in cpu and "{node}" not in cpu
    assert rules["running_containers"]["expr"] == 'sum by (node) (my_containers{kubernetes_node!=""})'  # the policy's own query


def test_a_feature_without_a_query_is_refused_by_name() -> None:
    with pytest.raises(RecordingRulesError, match="gpu_temperature"):
        rule_file(PolicySpec.from_dict(SPEC), ["cpu_utilisation", "gpu_temperature"], "g")


def test_promtool_accepts_the_rule_file(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    assert promtool, "promtool comes with Prometheus (ftmoe cluster build installs it)"
    path = tmp_path / "rules.yml"
    path.write_text(yaml.safe_dump(rule_file(PolicySpec.from_dict(SPEC), list(FEATURE_NAMES), "ftmoe-p")))
    checked = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True)
    assert checked.returncode == 0 and f"{len(FEATURE_NAMES)} rules found" in checked.stdout, checked.stdout + checked.stderr


def test_the_prometheusrule_object_holds_the_same_groups() -> None:
    spec = PolicySpec.from_dict(SPEC)
    obj = prometheus_rule(spec, list(FEATURE_NAMES), "ftmoe-p", "monitoring")
    assert obj["kind"] == "PrometheusRule" and obj["metadata"]["namespace"] == "monitoring"
    assert obj["spec"]["groups"] == rule_file(spec, list(FEATURE_NAMES), "ftmoe-p")["groups"]


def manifest(tmp_path: Path, doc: object) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_the_command_prints_rules_for_the_default_models_features(tmp_path: Path) -> None:
    path = manifest(tmp_path, {"apiVersion": "ftmoe.io/v1alpha1", "kind": "FaultTolerancePolicy", "metadata": {"name": "p"}, "spec": SPEC})
    out = subprocess.run([FTMOE, "operator", "recording-rules", "-f", str(path)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    (group,) = yaml.safe_load(out.stdout)["groups"]
    assert group["name"] == "ftmoe-p" and len(group["rules"]) == len(FEATURE_NAMES)


@pytest.mark.parametrize(
    ("doc", "says"),
    [
        ({"kind": "Deployment"}, "not a FaultTolerancePolicy"),
        ({"kind": "FaultTolerancePolicy", "spec": {"interval": "30s"}}, "spec.prometheus"),
        (
            {
                "kind": "FaultTolerancePolicy",
                "spec": {**SPEC, "model": {"source": "ConfigMap", "configMap": {"namespace": "a", "name": "b"}}},
            },
            "--model",
        ),
    ],
)
def test_bad_input_is_one_line_naming_the_fix(tmp_path: Path, doc: dict[str, object], says: str) -> None:
    out = subprocess.run([FTMOE, "operator", "recording-rules", "-f", str(manifest(tmp_path, doc))], capture_output=True, text=True)
    assert out.returncode == 1 and out.stderr.startswith("error: ") and says in out.stderr and "Traceback" not in out.stderr, out.stderr
