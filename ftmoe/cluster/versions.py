"""The pinned versions of everything the local cluster is built from, and where it lives."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

# kwok v0.8.0 lists 1.34 among its supported releases; the 1.34 go.mod accepts Go >= 1.24.
KUBERNETES_VERSION = "v1.34.4"
# The 3.6 line is what Kubernetes 1.34 is tested against.
ETCD_VERSION = "v3.6.16"
KWOK_VERSION = "v0.8.0"
# Helm for the chart's tests (deploy/helm); not part of the cache key, so adding it rebuilt nothing.
HELM_VERSION = "v3.22.0"


@dataclass(frozen=True)
class Versions:
    kubernetes: str = KUBERNETES_VERSION
    etcd: str = ETCD_VERSION
    kwok: str = KWOK_VERSION
    helm: str = HELM_VERSION

    @property
    def key(self) -> str:
        """A folder name that changes whenever any pinned version changes."""
        return f"k8s-{self.kubernetes}_etcd-{self.etcd}_kwok-{self.kwok}"


def cache_root() -> Path:
    """Built binaries live outside the repository, shared by every checkout."""
    explicit = os.environ.get("FTMOE_CACHE_DIR")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "ftmoe"


def state_root() -> Path:
    """Running clusters keep their state (pids, kubeconfig, logs) here."""
    explicit = os.environ.get("FTMOE_STATE_DIR")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_STATE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".local" / "state") / "ftmoe"
