"""Which pods a drain evicts: the rules of `kubectl drain` without its override flags, and
the per-pod opt-out annotation.

Like `kubectl drain`, a drain leaves alone pods that nothing would recreate (no controller)
and pods whose emptyDir data would be lost, unless the policy opts in
(``drain.evictBarePods``, ``drain.deleteEmptyDirData``, the twins of ``--force`` and
``--delete-emptydir-data``); it never touches DaemonSet or mirror pods.
"""

from __future__ import annotations

from typing import Any

from ftmoe.operator.annotations import EVICT_OPT_OUT
from ftmoe.operator.api.policy_types import DrainSpec

MIRROR = "kubernetes.io/config.mirror"
_YES, _NO = {"true", "yes", "on", "1"}, {"false", "no", "off", "0"}


def opted_out(value: str | None) -> bool:
    """``ftmoe.io/evict`` read as a boolean; a value that is neither yes nor no keeps the pod (when unsure, do not evict)."""
    return value is not None and value.strip().lower() not in _YES


def skip_reason(pod: dict[str, Any], drain: DrainSpec | None = None) -> str | None:
    """Why a drain leaves this pod alone, or None when it is to be evicted."""
    drain = drain or DrainSpec()
    meta = pod.get("metadata", {})
    annotations = meta.get("annotations") or {}
    owners = meta.get("ownerReferences") or []
    if meta.get("deletionTimestamp"):
        return "terminating"
    if pod.get("status", {}).get("phase") in ("Succeeded", "Failed"):
        return "finished"
    if MIRROR in annotations:
        return "mirror pod (managed by the kubelet)"
    if any(ref.get("kind") == "DaemonSet" and ref.get("controller") for ref in owners):
        return "DaemonSet pod (it would come straight back)"
    if opted_out(annotations.get(EVICT_OPT_OUT)):
        value = annotations[EVICT_OPT_OUT]
        return f"opted out ({EVICT_OPT_OUT}={value})" + ("" if value.strip().lower() in _NO else ", a value read as no")
    if not any(ref.get("controller") for ref in owners) and not drain.evict_bare_pods:
        return "no controller, so nothing would recreate it (spec.drain.evictBarePods)"
    if any("emptyDir" in v for v in (pod.get("spec") or {}).get("volumes") or []) and not drain.delete_empty_dir_data:
        return "its emptyDir data would be lost (spec.drain.deleteEmptyDirData)"
    return None


def to_evict(pods: list[dict[str, Any]], drain: DrainSpec | None = None) -> list[dict[str, Any]]:
    return [p for p in pods if skip_reason(p, drain) is None]


def left_alone(pods: list[dict[str, Any]], drain: DrainSpec | None = None) -> list[str]:
    """ns/name (why) of the pods a drain will not evict, apart from those that need no eviction."""
    out = []
    for p in pods:
        why = skip_reason(p, drain)
        if why is not None and why not in ("terminating", "finished") and not why.startswith(("mirror", "DaemonSet")):
            out.append(f"{p['metadata'].get('namespace')}/{p['metadata'].get('name')} ({why})")
    return out
