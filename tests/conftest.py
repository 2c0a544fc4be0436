"""Shared fixtures. The local cluster starts once per test session, or FTMOE_KUBECONFIG is used."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

TEST_CLUSTER = "ftmoe-test"
# Ports away from the defaults so `make test` can run beside a `make demo` cluster.
TEST_APISERVER_PORT = 26443
TEST_PROMETHEUS_PORT = 29090


@pytest.fixture(scope="session")
def local_cluster() -> Iterator[Any]:
    """The local cluster (started once per session), or None when FTMOE_KUBECONFIG
    points the tests at another cluster."""
    if os.environ.get("FTMOE_KUBECONFIG"):
        yield None
        return
    from ftmoe.cluster.local import ClusterSettings, LocalCluster

    cluster = LocalCluster(TEST_CLUSTER)
    cluster.up(ClusterSettings(TEST_CLUSTER, 16, TEST_APISERVER_PORT, TEST_PROMETHEUS_PORT))
    yield cluster
    if not os.environ.get("FTMOE_KEEP_CLUSTER"):
        cluster.down(quiet=True)


@pytest.fixture(scope="session")
def cluster_kubeconfig(local_cluster: Any) -> Path:
    """A kubeconfig for a real cluster: FTMOE_KUBECONFIG if set, else the local cluster."""
    explicit = os.environ.get("FTMOE_KUBECONFIG")
    return Path(explicit) if explicit else local_cluster.kubeconfig


@pytest.fixture(scope="module")
def operator_launch() -> Any:
    """How the live ``env`` runs the operator: None runs the checkout's ``ftmoe operator
    run``; tests/image overrides it to run the built image's entrypoint."""
    return None


@pytest.fixture(scope="session")
def local_cluster_name() -> str:
    return TEST_CLUSTER


@pytest.fixture(scope="session")
def api_client(cluster_kubeconfig: Path):  # type: ignore[no-untyped-def]
    from kubernetes import config

    return config.new_client_from_config(config_file=str(cluster_kubeconfig))


@pytest.fixture()
def namespace(api_client) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """A fresh namespace per test, deleted afterwards."""
    from kubernetes import client

    core = client.CoreV1Api(api_client)
    name = f"t-{uuid.uuid4().hex[:8]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    core.delete_namespace(name, propagation_policy="Background")


@pytest.fixture(scope="session")
def kubectl(cluster_kubeconfig: Path):  # type: ignore[no-untyped-def]
    """kubectl against the test cluster: the toolchain's binary, or the one on PATH."""
    import shutil
    import subprocess

    from ftmoe.cluster.toolchain import Toolchain

    built = Toolchain().binaries().kubectl
    binary = str(built) if built.exists() else (shutil.which("kubectl") or "kubectl")

    def run(*args: str, input: str | None = None, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [binary, "--kubeconfig", str(cluster_kubeconfig), *args],
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed: {proc.stderr.strip()}")
        return proc

    return run
