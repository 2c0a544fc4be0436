"""The Helm chart (deploy/helm/ftmoe-operator): lint, the alert rules under promtool, the
same RBAC and admission policy as the kustomize base, the rules and dashboard it ships, and
on the local cluster a server-side dry run, an install (adopting what deploy/base made, as
a user moving from kustomize does) and an upgrade. helm and promtool come from the
toolchain (`ftmoe cluster build`, which `make test` runs first)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from ftmoe.cluster.operator_access import apply_operator_manifests
from ftmoe.cluster.toolchain import Toolchain

ROOT = Path(__file__).resolve().parents[1]
CHART = ROOT / "deploy" / "helm" / "ftmoe-operator"
NAMESPACE = "ftmoe-system"
ALL_ON = ["--set", "serviceMonitor.enabled=true", "--set", "prometheusRule.enabled=true", "--set", "grafanaDashboard.enabled=true"]


def tool(name: str) -> str:
    path: Path = getattr(Toolchain().binaries(), name)
    assert path.is_file(), f"{name} not found at {path}: run `ftmoe cluster build` (make test does) first"
    return str(path)


def run(*args: str, input: str | None = None, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(list(args), capture_output=True, text=True, input=input, env=env, check=False, timeout=300)
    assert proc.returncode == 0, f"{' '.join(args[:3])} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
    return proc.stdout


def render(*values: str) -> list[dict[str, Any]]:
    text = run(tool("helm"), "template", "ftmoe", str(CHART), "--namespace", NAMESPACE, *values)
    return [d for d in yaml.safe_load_all(text) if d]


def by_kind(docs: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(d["kind"], d["metadata"]["name"]): d for d in docs}


def test_helm_lint_with_defaults_and_every_option_on() -> None:
    run(tool("helm"), "lint", "--strict", str(CHART))
    run(tool("helm"), "lint", "--strict", str(CHART), *ALL_ON, "--set", "stateVolume.persistentVolumeClaim=ftmoe-state")


def test_alert_rules_pass_promtool_and_their_unit_tests() -> None:
    run(tool("promtool"), "check", "rules", str(CHART / "files" / "alerts.yaml"))
    out = run(tool("promtool"), "test", "rules", str(CHART / "files" / "alerts_test.yaml"))
    assert "SUCCESS" in out


def test_chart_and_kustomize_base_grant_the_same_rbac_and_admission_policy() -> None:
    chart = by_kind(render())
    base = by_kind([d for d in yaml.safe_load_all((ROOT / "deploy" / "base" / "rbac.yaml").read_text()) if d])
    base |= by_kind([d for d in yaml.safe_load_all((ROOT / "deploy" / "base" / "admission-policy.yaml").read_text()) if d])
    for key, doc in base.items():
        assert key in chart, f"the chart lacks {key}"
        for field in ("rules", "roleRef", "subjects", "spec"):
            assert chart[key].get(field) == doc.get(field), f"{key} {field} differs between the chart and deploy/base"
    extra = {k for k in chart if k[0] in ("ClusterRole", "Role", "ClusterRoleBinding", "RoleBinding")} - set(base)
    assert not extra, f"the chart grants more than deploy/base: {extra}"


def test_the_chart_ships_the_rules_file_and_the_dashboard_unchanged() -> None:
    docs = by_kind(render(*ALL_ON))
    rules = docs[("PrometheusRule", "ftmoe-operator")]["spec"]
    assert rules == yaml.safe_load((CHART / "files" / "alerts.yaml").read_text())
    dashboard = docs[("ConfigMap", "ftmoe-operator-dashboard")]
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(dashboard["data"]["ftmoe-operator.json"]) == json.loads((CHART / "files" / "dashboard.json").read_text())
    deployment = docs[("Deployment", "ftmoe-operator")]
    assert deployment["spec"]["replicas"] == 2 and docs[("PodDisruptionBudget", "ftmoe-operator")]["spec"]["minAvailable"] == 1
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--lease-duration=15" in args and "--kube-api-qps=50" in args and "--threads=1" in args
    assert docs[("FaultTolerancePolicy", "observe-all")]["spec"]["mode"] == "Observe"


@pytest.mark.cluster
def test_the_rendered_chart_passes_the_api_server(kubectl: Any) -> None:
    apply_operator_manifests(kubectl)  # the CRDs, so the first policy can be checked against its schema
    text = run(tool("helm"), "template", "ftmoe", str(CHART), "--namespace", NAMESPACE, "--set", "grafanaDashboard.enabled=true")
    out = kubectl("apply", "--dry-run=server", "-f", "-", input=text).stdout
    assert "deployment.apps/ftmoe-operator" in out and "faulttolerancepolicy.ftmoe.io/observe-all" in out, out


@pytest.mark.cluster
def test_helm_install_adopts_the_kustomize_install_and_upgrades(kubectl: Any, cluster_kubeconfig: Path) -> None:
    """What a user moving from `kubectl apply -k deploy/base` does: mark the existing objects
    as the release's, install, upgrade. The Deployment's pods run on kwok's nodes, which run
    no container: the image itself is not exercised here."""
    import os

    apply_operator_manifests(kubectl)
    env = {**os.environ, "KUBECONFIG": str(cluster_kubeconfig)}
    chart = by_kind(render())
    for kind, name in chart:
        if kind in ("FaultTolerancePolicy", "CustomResourceDefinition"):
            continue
        namespaced = kind not in ("ClusterRole", "ClusterRoleBinding", "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding")
        where = ["-n", NAMESPACE] if namespaced else []
        if kubectl("get", kind, name, *where, check=False).returncode == 0:
            kubectl("label", "--overwrite", kind, name, *where, "app.kubernetes.io/managed-by=Helm")
            kubectl(
                "annotate",
                "--overwrite",
                kind,
                name,
                *where,
                "meta.helm.sh/release-name=ftmoe",
                f"meta.helm.sh/release-namespace={NAMESPACE}",
            )
    helm = tool("helm")
    try:
        run(helm, "install", "ftmoe", str(CHART), "--namespace", NAMESPACE, "--wait", "--timeout", "3m", env=env)
        status = json.loads(run(helm, "status", "ftmoe", "--namespace", NAMESPACE, "-o", "json", env=env))
        assert status["info"]["status"] == "deployed"
        assert replicas_ready(kubectl) == 2  # helm's --wait accepts one short of the count (maxUnavailable 1)
        assert kubectl("get", "ftp", "observe-all", "-o", "jsonpath={.spec.mode}").stdout == "Observe"
        run(
            helm,
            "upgrade",
            "ftmoe",
            str(CHART),
            "--namespace",
            NAMESPACE,
            "--set",
            "replicas=3",
            "--set",
            "firstPolicy.enabled=false",
            "--wait",
            "--timeout",
            "3m",
            env=env,
        )
        assert replicas_ready(kubectl) == 3
        assert kubectl("get", "ftp", "observe-all", check=False).returncode != 0, (
            "the upgrade removed the first policy it no longer renders"
        )
        assert json.loads(run(helm, "history", "ftmoe", "--namespace", NAMESPACE, "-o", "json", env=env))[-1]["revision"] == 2
    finally:
        # An operator running against this cluster may have put its finalizer on the first policy.
        kubectl("patch", "ftp", "observe-all", "--type=merge", "-p", '{"metadata":{"finalizers":null}}', check=False)
        subprocess.run(
            [helm, "uninstall", "ftmoe", "--namespace", NAMESPACE, "--wait", "--timeout", "2m"], env=env, capture_output=True, check=False
        )
        apply_operator_manifests(kubectl)  # what the other tests expect to find


def replicas_ready(kubectl: Any) -> int:
    kubectl("rollout", "status", "deployment/ftmoe-operator", "-n", NAMESPACE, "--timeout=120s", timeout=150)
    status = json.loads(kubectl("get", "deployment", "ftmoe-operator", "-n", NAMESPACE, "-o", "json").stdout)["status"]
    return int(status.get("readyReplicas") or 0)
