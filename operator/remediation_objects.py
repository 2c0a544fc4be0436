"""A remediation object made from its template, Node Healthcheck's way.

The template (any kind ending in Template, e.g. Medik8s' SelfNodeRemediationTemplate or a
Cluster API external remediation template) holds ``spec.template.spec``; the remediation is
the same group/version, the kind without the suffix, named after the node (what
self-node-remediation and the Cluster API remediators expect), in the template's namespace,
owned by the policy (so deleting the policy collects it) and labelled so that a human finds
it with ``kubectl get <kind> -l ftmoe.io/policy=<policy>``.
"""

from __future__ import annotations

from typing import Any

from ftmoe.operator import annotations as A
from ftmoe.operator.api.disruption_types import RemediationTemplate
from ftmoe.operator.policy import GROUP, VERSION

NODE_LABEL = A.PREFIX + "node"
POLICY_LABEL = A.PREFIX + "policy"


def remediation_object(template: dict[str, Any], ref: RemediationTemplate, node: str, policy: dict[str, Any], now: float) -> dict[str, Any]:
    spec = ((template.get("spec") or {}).get("template") or {}).get("spec") or {}
    meta = policy["metadata"]
    return {
        "apiVersion": ref.api_version,
        "kind": ref.remediation_kind,
        "metadata": {
            "name": node,
            "namespace": ref.namespace,
            "labels": {POLICY_LABEL: meta["name"], NODE_LABEL: node},
            "annotations": {A.PREFIX + "template": f"{ref.kind}/{ref.name}", A.PREFIX + "created-at": A.rfc3339(now)},
            "ownerReferences": [
                {
                    "apiVersion": f"{GROUP}/{VERSION}",
                    "kind": "FaultTolerancePolicy",
                    "name": meta["name"],
                    "uid": meta.get("uid", ""),
                    "blockOwnerDeletion": False,
                }
            ],
        },
        "spec": spec,
    }


def object_ref(ref: RemediationTemplate) -> str:
    """How the node's ftmoe.io/remediations annotation names the object (its name is the node's)."""
    return f"{ref.api_version}/{ref.remediation_kind}/{ref.namespace}"


def parse_refs(text: str | None) -> list[tuple[str, str, str]]:
    """(apiVersion, kind, namespace) of each object named in the annotation."""
    out = []
    for part in (text or "").split():
        bits = part.split("/")
        if len(bits) == 4:
            out.append((f"{bits[0]}/{bits[1]}", bits[2], bits[3]))
    return out
