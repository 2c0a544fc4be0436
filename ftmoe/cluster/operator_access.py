"""Run the operator on a cluster from a checkout: its CRDs and RBAC applied, and a
kubeconfig that acts as its ServiceAccount, so RBAC is the same as in the Deployment."""

from __future__ import annotations

import base64
import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from ftmoe.cluster.errors import ClusterError

REPO = Path(__file__).resolve().parents[2]
NAMESPACE = "ftmoe-system"
SERVICE_ACCOUNT = "ftmoe-operator"
CRDS = ("faulttolerancepolicies.ftmoe.io", "nodefaultpredictions.ftmoe.io")

Kubectl = Callable[..., "subprocess.CompletedProcess[str]"]


def apply_operator_manifests(kubectl: Kubectl, repo: Path = REPO) -> None:
    """CRDs, namespace, RBAC and the admission policy from deploy/base; not the Deployment (it needs an image)."""
    base = repo / "deploy" / "base"
    if not (repo / "crds").is_dir() or not base.is_dir():
        raise ClusterError(f"crds/ and deploy/base/ not found under {repo}; run this from a checkout of ftmoe-operator")
    kubectl("apply", "-k", str(repo / "crds"))
    kubectl("apply", "-f", str(base / "namespace.yaml"), "-f", str(base / "rbac.yaml"), "-f", str(base / "admission-policy.yaml"))
    kubectl("wait", "--for=condition=Established", "--timeout=60s", *[f"crd/{c}" for c in CRDS], timeout=90)


def self_contained(cluster: dict[str, Any], base: Path) -> dict[str, Any]:
    """The cluster entry with its CA file inlined, so the kubeconfig works where that file
    is not (inside the operator image, on another machine)."""
    entry = dict(cluster.get("cluster") or {})
    path = entry.pop("certificate-authority", None)
    if path:
        ca = Path(path) if Path(path).is_absolute() else base / path
        entry["certificate-authority-data"] = base64.b64encode(ca.read_bytes()).decode()
    return {**cluster, "cluster": entry}


def service_account_kubeconfig(kubectl: Kubectl, admin_kubeconfig: Path, out: Path, duration: str = "24h") -> Path:
    """A kubeconfig with the same server and CA as ``admin_kubeconfig`` and a token of the
    operator's ServiceAccount (TokenRequest API)."""
    token = kubectl("-n", NAMESPACE, "create", "token", SERVICE_ACCOUNT, f"--duration={duration}").stdout.strip()
    admin = yaml.safe_load(admin_kubeconfig.read_text())
    context = next(c for c in admin["contexts"] if c["name"] == admin["current-context"])["context"]
    cluster = self_contained(next(c for c in admin["clusters"] if c["name"] == context["cluster"]), admin_kubeconfig.parent)
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "ftmoe-operator",
        "clusters": [cluster],
        "users": [{"name": "ftmoe-operator", "user": {"token": token}}],
        "contexts": [{"name": "ftmoe-operator", "context": {"cluster": cluster["name"], "user": "ftmoe-operator"}}],
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc))
    out.chmod(0o600)
    return out
