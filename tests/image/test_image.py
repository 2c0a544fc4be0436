"""The built image runs the operator. `make image` builds localhost/ftmoe-operator:dev from
the Dockerfile with buildah; this module runs that image's own entrypoint and command (read
from the image's config) as the image's non-root user, with the host's network, against the
local cluster and under the operator's ServiceAccount, and waits for it to write a
NodeFaultPrediction and a would-cordon for an injected fault. `make test-image` builds the
image and runs this module (`make test` does not: see the README, "The image")."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from live_cluster import STEP, Env, apply_policy, delete_policy, env, inject, wait_for

__all__ = ["env"]  # the live environment fixture, with the image's operator in it

IMAGE = os.environ.get("FTMOE_IMAGE", "localhost/ftmoe-operator:dev")
BUILDAH = ["buildah"]  # the storage driver buildah picks, as `make image` does

pytestmark = [pytest.mark.cluster, pytest.mark.image]


def image_config() -> dict[str, Any]:
    if shutil.which("buildah") is None:
        pytest.fail("buildah is not installed: `make test-image` builds the image (and installs buildah) first")
    out = subprocess.run([*BUILDAH, "inspect", "--type", "image", IMAGE], capture_output=True, text=True)
    if out.returncode != 0:
        pytest.fail(f"no image {IMAGE} in buildah's storage: build it with `make image` ({out.stderr.strip()})")
    config: dict[str, Any] = json.loads(out.stdout)["OCIv1"]["config"]
    return config


@pytest.fixture(scope="module")
def image() -> dict[str, Any]:
    return image_config()


@pytest.fixture(scope="module")
def operator_launch(image: dict[str, Any]) -> Iterator[Callable[[list[str]], list[str]]]:
    """The live env's operator, from the image: a working container of it, and a command
    line that runs its entrypoint + command with the env's flags appended."""
    uid, _, gid = str(image["User"]).partition(":")
    ctr = subprocess.run(
        [*BUILDAH, "from", "--name", f"ftmoe-image-test-{uuid.uuid4().hex[:6]}", IMAGE], check=True, capture_output=True, text=True
    ).stdout.strip()

    def launch(flags: list[str]) -> list[str]:
        kubeconfig = Path(flags[flags.index("--kubeconfig") + 1])
        state = Path(flags[flags.index("--state-dir") + 1])
        logs = state.parent
        state.mkdir(parents=True, exist_ok=True)
        # the image's user must read its kubeconfig and write its state, as in a pod
        for path in (logs, state, kubeconfig):
            os.chown(path, int(uid), int(gid or uid))
        return [
            *BUILDAH,
            "run",
            "--isolation",
            "chroot",
            "--network",
            "host",
            "--volume",
            f"{logs}:{logs}",
            ctr,
            "--",
            *image["Entrypoint"],
            *image["Cmd"],
            *flags,
        ]

    yield launch
    subprocess.run([*BUILDAH, "rm", ctr], capture_output=True)


def descendants(pid: int) -> list[tuple[int, int, list[str]]]:
    """(pid, effective uid, argv) of every process under ``pid``, read from /proc."""
    procs: dict[int, tuple[int, int, list[str]]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = dict(line.split(":", 1) for line in (entry / "status").read_text().splitlines() if ":" in line)
            argv = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue  # gone meanwhile
        procs[int(entry.name)] = (int(status["PPid"]), int(status["Uid"].split()[1]), argv)
    found, frontier = [], {pid}
    while frontier:
        children = {p for p, (ppid, _, _) in procs.items() if ppid in frontier}
        found += [(p, procs[p][1], procs[p][2]) for p in children]
        frontier = children
    return found


def operator_processes(env: Env) -> list[tuple[int, int, list[str]]]:
    assert env.operator is not None
    return [p for p in descendants(env.operator.pid) if "operator" in p[2] and "run" in p[2]]


def test_the_image_entrypoint_runs_the_operator_as_its_non_root_user(env: Env, image: dict[str, Any]) -> None:
    assert image["Entrypoint"] == ["ftmoe"] and image["Cmd"] == ["operator", "run"]
    procs = wait_for(lambda: operator_processes(env), 30, "the operator process inside the image's container")
    assert {uid for _, uid, _ in procs} == {int(str(image["User"]).split(":")[0])}, f"the operator runs as the image's user: {procs}"


def test_the_image_operator_writes_predictions_and_acts_on_a_fault(env: Env) -> None:
    nodes = ["node-0", "node-1"]
    policy = apply_policy(env, nodes, mode="Observe")
    started = time.time() - 1
    try:
        for node in nodes:
            wait_for(lambda n=node: env.prediction(policy, n), 60, f"{node}'s NodeFaultPrediction from the image's operator")
        inject("node-1", duration=20)
        wait_for(
            lambda: (p := env.prediction(policy, "node-1")) and p["status"].get("action") == "would-cordon",
            30 * STEP,
            "a would-cordon prediction for node-1 from the image's operator",
        )
        env.await_node_event("node-1", "WouldCordon", since=started)
        assert not env.node("node-1").spec.unschedulable
    finally:
        delete_policy(env, policy)
