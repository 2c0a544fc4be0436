"""deploy/base/rbac.yaml grants exactly what the operator's code calls: nothing missing
(the end-to-end tests would fail under it) and nothing extra (least privilege). Writes to
pods are not in the operator's own role: they are two opt-in ClusterRoles an admin binds
where wanted (checkpoint annotations per namespace, forced deletes cluster-wide)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]

# Every Kubernetes client call in operator/, and the permission it needs:
# (api group, resource, verb, where). A new call fails this test until it is listed here
# and granted in deploy/base/rbac.yaml.
REMEDIATOR, REMEDIATION_ROLE = "<remediator group>", "opt-in, per remediator"
CALLS: dict[str, set[tuple[str, str, str, str]]] = {
    "core.list_node": {("", "nodes", "list", "cluster"), ("", "nodes", "watch", "cluster")},
    "core.patch_node": {("", "nodes", "patch", "cluster")},
    "core.list_pod_for_all_namespaces": {("", "pods", "list", "cluster"), ("", "pods", "watch", "cluster")},
    "core.patch_namespaced_pod": {("", "pods", "patch", "opt-in ftmoe-operator-checkpointing")},
    "core.delete_namespaced_pod": {("", "pods", "delete", "opt-in ftmoe-operator-force-drain")},
    "core.create_namespaced_pod_eviction": {("", "pods/eviction", "create", "cluster")},
    "core.read_namespaced_config_map": {("", "configmaps", "get", "cluster")},
    "core.read_namespaced_secret": {("", "secrets", "get", "namespace")},
    "core.create_namespaced_event": {("", "events", "create", "cluster")},
    "custom.list_cluster_custom_object": {
        ("ftmoe.io", "nodefaultpredictions", "list", "cluster"),
        ("ftmoe.io", "nodefaultpredictions", "watch", "cluster"),
        ("ftmoe.io", "faulttolerancepolicies", "list", "cluster"),
        ("ftmoe.io", "faulttolerancepolicies", "watch", "cluster"),
    },
    "custom.create_cluster_custom_object": {("ftmoe.io", "nodefaultpredictions", "create", "cluster")},
    "custom.patch_cluster_custom_object": {("ftmoe.io", "nodefaultpredictions", "patch", "cluster")},
    "custom.delete_cluster_custom_object": {("ftmoe.io", "nodefaultpredictions", "delete", "cluster")},
    "custom.patch_cluster_custom_object_status": {("ftmoe.io", "faulttolerancepolicies/status", "patch", "cluster")},
    # Remediation objects are of the remediator's kinds: granted by the admin's own ClusterRole
    # (deploy/optional/remediation-rbac.yaml is the Medik8s one), not by deploy/base.
    "custom.get_api_resources": set(),  # discovery: every authenticated user may read it (system:discovery)
    "custom.get_namespaced_custom_object": {(REMEDIATOR, "<kind>templates", "get", REMEDIATION_ROLE)},
    "custom.create_namespaced_custom_object": {(REMEDIATOR, "<kind>s", "create", REMEDIATION_ROLE)},
    "custom.patch_namespaced_custom_object": {(REMEDIATOR, "<kind>s", "patch", REMEDIATION_ROLE)},
    "custom.delete_namespaced_custom_object": {(REMEDIATOR, "<kind>s", "delete", REMEDIATION_ROLE)},
    "coord.read_namespaced_lease": {("coordination.k8s.io", "leases", "get", "namespace")},
    "coord.create_namespaced_lease": {("coordination.k8s.io", "leases", "create", "namespace")},
    "coord.replace_namespaced_lease": {("coordination.k8s.io", "leases", "update", "namespace")},
}
# Every call above made with watch=True by an informer (operator/cluster_cache.py) needs
# "watch" too; they are listed with the call. What kopf itself does for
# operator/handlers.py: list, watch and patch the policies (daemons, finalizer, progress
# annotations), post events.
KOPF = {
    ("ftmoe.io", "faulttolerancepolicies", "list", "cluster"),
    ("ftmoe.io", "faulttolerancepolicies", "watch", "cluster"),
    ("ftmoe.io", "faulttolerancepolicies", "patch", "cluster"),
    ("", "events", "create", "cluster"),
}


def granted() -> set[tuple[str, str, str, str]]:
    out = set()
    for doc in yaml.safe_load_all((ROOT / "deploy" / "base" / "rbac.yaml").read_text()):
        if doc["kind"] not in ("ClusterRole", "Role"):
            continue
        name = doc["metadata"]["name"]
        where = "namespace" if doc["kind"] == "Role" else "cluster" if name == "ftmoe-operator" else f"opt-in {name}"
        for rule in doc["rules"]:
            for group in rule["apiGroups"]:
                for resource in rule["resources"]:
                    for verb in rule["verbs"]:
                        out.add((group, resource, verb, where))
    return out


def test_every_client_call_is_known() -> None:
    used = set()
    for path in (ROOT / "operator").rglob("*.py"):
        used |= set(re.findall(r"self\.((?:core|custom|coord)\.[a-z_]+)\b", path.read_text()))
    assert used == set(CALLS), "update CALLS and deploy/base/rbac.yaml together"


def test_role_grants_exactly_what_is_used() -> None:
    needed = {c for c in set().union(*CALLS.values()) if c[3] != REMEDIATION_ROLE} | KOPF
    assert granted() == needed


def test_the_remediation_example_grants_what_the_hand_off_calls() -> None:
    """The Medik8s example: get on the template kind, create/patch/delete on the remediation kind."""
    docs = list(yaml.safe_load_all((ROOT / "deploy" / "optional" / "remediation-rbac.yaml").read_text()))
    role = next(d for d in docs if d["kind"] == "ClusterRole")
    rules = {(g, r, v) for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"] for v in rule["verbs"]}
    group = "self-node-remediation.medik8s.io"
    wanted = {c for c in set().union(*CALLS.values()) if c[3] == REMEDIATION_ROLE}
    assert {(group, r.replace("<kind>", "selfnoderemediation"), v) for _, r, v, _ in wanted} == rules
    binding = next(d for d in docs if d["kind"] == "ClusterRoleBinding")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"][0]["name"] == "ftmoe-operator"


def bindings() -> list[dict]:  # type: ignore[type-arg]
    return [d for d in yaml.safe_load_all((ROOT / "deploy" / "base" / "rbac.yaml").read_text()) if d["kind"].endswith("Binding")]


def test_the_opt_in_roles_are_not_bound_by_the_base() -> None:
    """Installing deploy/base grants no pod write; the bindings live in deploy/optional/."""
    bound = {b["roleRef"]["name"] for b in bindings()}
    assert bound == {"ftmoe-operator"}
    optional = {
        d["roleRef"]["name"]
        for p in (ROOT / "deploy" / "optional").glob("*.yaml")
        for d in yaml.safe_load_all(p.read_text())
        if d["kind"].endswith("Binding")
    }
    assert optional == {"ftmoe-operator-checkpointing", "ftmoe-operator-force-drain", "ftmoe-operator-remediation"}
    checkpointing = yaml.safe_load((ROOT / "deploy" / "optional" / "checkpointing-rolebinding.yaml").read_text())
    assert checkpointing["kind"] == "RoleBinding", "pod annotations are granted per namespace, never cluster-wide"
