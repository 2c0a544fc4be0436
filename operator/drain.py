"""Which pods a drain evicts: the same rules as `kubectl drain`, plus the opt-out annotation."""

from __future__ import annotations

from typing import Any

from ftmoe.operator.annotations import EVICT_OPT_OUT

MIRROR = "kubernetes.io/config.mirror"


def skip_reason(pod: dict[str, Any]) -> str | None:
    """Why a drain leaves this pod alone, or None when it is to be evicted."""
    meta = pod.get("metadata", {})
    if meta.get("deletionTimestamp"):
        return "terminating"
    if pod.get("status", {}).get("phase") in ("Succeeded", "Failed"):
        return "finished"
    if MIRROR in (meta.get("annotations") or {}):
        return "mirror pod (managed by the kubelet)"
    if any(ref.get("kind") == "DaemonSet" and ref.get("controller") for ref in meta.get("ownerReferences") or []):
        return "DaemonSet pod (it would come straight back)"
    if (meta.get("annotations") or {}).get(EVICT_OPT_OUT) == "false":
        return f"opted out ({EVICT_OPT_OUT}=false)"
    return None


def to_evict(pods: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [p for p in pods if skip_reason(p) is None]
