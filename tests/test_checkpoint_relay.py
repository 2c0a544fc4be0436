"""``ftmoe checkpoint relay`` with real trainer processes (tests/trainers/stand_in_trainer.py):
a Hugging Face-style trigger-file trainer, a save-and-continue signal trainer and a
Megatron-style save-and-exit trainer; then on the local cluster, the relay reading the pod
through the API and acknowledging there."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ftmoe.checkpoint import ACK, REQUEST
from ftmoe.checkpoint_relay import Relay, RelayError, RelaySettings, file_source

TRAINER = Path(__file__).parent / "trainers" / "stand_in_trainer.py"
FTMOE = str(Path(sys.executable).parent / "ftmoe")


def trainer(tmp: Path, style: str, *extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, str(TRAINER), "--style", style, "--out", str(tmp / "ckpt"), *extra])


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait(timeout=10)


def project(path: Path, annotations: dict[str, str]) -> None:
    """What the kubelet does for a downwardAPI volume: key="value" lines, swapped in atomically."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(f"{k}={json.dumps(v)}\n" for k, v in annotations.items()))
    tmp.replace(path)


def run_until(relay: Relay, done: Callable[[], bool], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, f"relay state: waiting={relay.waiting}, acked={relay.acked}"
        relay.tick()
        time.sleep(0.05)


def test_trigger_file_trainer_checkpoints_on_each_new_request_and_is_acked(tmp_path: Path, processes: list[Any]) -> None:
    trigger, ann = tmp_path / "save-now", tmp_path / "annotations"
    processes.append(trainer(tmp_path, "trigger", "--trigger-file", str(trigger)))
    acked: list[int] = []
    settings = RelaySettings(trigger_file=trigger, checkpoint_glob=str(tmp_path / "ckpt" / "checkpoint-*"), poll=0.05)
    relay = Relay(settings, file_source(ann), lambda r: acked.append(r) is None, lambda: None)
    project(ann, {REQUEST: "1"})
    run_until(relay, lambda: acked == [1])
    assert trigger.read_text().strip() == "1" and len(list((tmp_path / "ckpt").glob("checkpoint-*"))) == 1
    project(ann, {REQUEST: "1", ACK: "1"})  # the ack, projected back: nothing more to do
    for _ in range(10):
        relay.tick()
    assert acked == [1] and relay.waiting is None
    project(ann, {REQUEST: "2", ACK: "1"})
    run_until(relay, lambda: acked == [1, 2])
    assert len(list((tmp_path / "ckpt").glob("checkpoint-*"))) == 2


def test_signal_trainer_saves_and_goes_on(tmp_path: Path, processes: list[Any]) -> None:
    ann = tmp_path / "annotations"
    proc = trainer(tmp_path, "signal")
    processes.append(proc)
    time.sleep(0.5)  # the trainer installs its handler (the relay's warmup, here by hand)
    acked: list[int] = []
    settings = RelaySettings(signal=int(signal.SIGUSR1), checkpoint_glob=str(tmp_path / "ckpt" / "checkpoint-*"), poll=0.05, warmup=0)
    relay = Relay(settings, file_source(ann), lambda r: acked.append(r) is None, lambda: proc.pid)
    project(ann, {REQUEST: "7", ACK: "6"})
    run_until(relay, lambda: acked == [7])
    assert proc.poll() is None, "save-and-continue: the trainer still runs"


def test_a_checkpoint_that_never_comes_is_not_acked(tmp_path: Path, processes: list[Any]) -> None:
    ann = tmp_path / "annotations"
    proc = trainer(tmp_path, "trigger")  # never reads a trigger file: no checkpoint will come
    processes.append(proc)
    acked: list[int] = []
    settings = RelaySettings(trigger_file=tmp_path / "t", checkpoint_glob=str(tmp_path / "ckpt" / "checkpoint-*"), timeout=0.5, poll=0.05)
    relay = Relay(settings, file_source(ann), lambda r: acked.append(r) is None, lambda: proc.pid)
    project(ann, {REQUEST: "3"})
    run_until(relay, lambda: relay.handled == 3, timeout=5)
    assert acked == [] and relay.waiting is None


def megatron_relay(ckpt: Path, *source: str) -> list[str]:
    """The relay as a Megatron-style trainer's entrypoint: SIGTERM saves, then exits."""
    relay = [
        FTMOE,
        "checkpoint",
        "relay",
        "--signal",
        "SIGTERM",
        "--exits",
        "--checkpoint-glob",
        str(ckpt / "latest_checkpointed_iteration.txt"),
    ]
    return [*relay, *source, "--warmup", "1s", "--", sys.executable, str(TRAINER), "--style", "megatron", "--out", str(ckpt)]


def test_megatron_style_trainer_saves_on_sigterm_and_exits_through_the_wrapper(tmp_path: Path) -> None:
    ann, ckpt = tmp_path / "annotations", tmp_path / "ckpt"
    project(ann, {})
    relay = subprocess.Popen(
        megatron_relay(ckpt, "--annotations", str(ann), "--poll", "100ms"), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    time.sleep(1.0)
    project(ann, {REQUEST: "1"})
    out, _ = relay.communicate(timeout=30)
    assert relay.returncode == 0, out
    assert (ckpt / "latest_checkpointed_iteration.txt").is_file() and list(ckpt.glob("iter_*"))
    assert "saved iteration" in out


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--signal", "SIGTERM", "--exits", "--grace-period", "30", "--checkpoint-cost", "150"], "shorter than the checkpoint (150s,"),
        (["--signal", "SIGNOPE"], "not a signal name"),
        (["--signal", "SIGUSR1", "--checkpoint-glob", "x", "--timeout", "soon"], "is not a duration"),
    ],
)
def test_settings_that_cannot_work_are_refused_with_the_fix(tmp_path: Path, args: list[str], says: str) -> None:
    glob = [] if "--checkpoint-glob" in args else ["--checkpoint-glob", str(tmp_path / "*")]
    proc = subprocess.run(
        [FTMOE, "checkpoint", "relay", *args, *glob, "--annotations", str(tmp_path / "a"), "--", "true"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1 and says in proc.stderr and "Traceback" not in proc.stderr, proc.stderr


def test_settings_check_needs_a_way_to_see_the_checkpoint() -> None:
    with pytest.raises(RelayError, match="--checkpoint-glob"):
        RelaySettings(signal=int(signal.SIGUSR1)).check(None)


@pytest.mark.cluster
def test_relay_reads_the_pod_and_acks_on_the_api_server(api_client: Any, cluster_kubeconfig: Path, namespace: str, tmp_path: Path) -> None:
    """The operator's side is played by a patch of ftmoe.io/checkpoint-request, as it writes it;
    the relay polls the pod through the API, signals the trainer and writes the ack there."""
    from kubernetes import client

    core = client.CoreV1Api(api_client)
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "trainer", "annotations": {"ftmoe.io/checkpoint-cost-seconds": "20"}},
        "spec": {"terminationGracePeriodSeconds": 60, "containers": [{"name": "t", "image": "registry.invalid/trainer:1"}]},
    }
    core.create_namespaced_pod(namespace, pod)
    ckpt = tmp_path / "ckpt"
    relay = subprocess.Popen(
        megatron_relay(
            ckpt,
            "--annotations",
            "api",
            "--pod",
            "trainer",
            "--namespace",
            namespace,
            "--kubeconfig",
            str(cluster_kubeconfig),
            "--poll",
            "200ms",
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        time.sleep(2.0)
        core.patch_namespaced_pod("trainer", namespace, {"metadata": {"annotations": {REQUEST: "1"}}})
        out, _ = relay.communicate(timeout=60)
    finally:
        if relay.poll() is None:
            relay.kill()
    assert relay.returncode == 0, out
    annotations = core.read_namespaced_pod("trainer", namespace).metadata.annotations
    assert annotations[ACK] == "1", out
    assert "acknowledged" in out


def test_no_signal_reaches_a_trainer_younger_than_the_warmup(tmp_path: Path) -> None:
    ann = tmp_path / "annotations"
    project(ann, {REQUEST: "1"})
    now = [100.0]
    sent: list[int] = []
    settings = RelaySettings(signal=int(signal.SIGUSR1), checkpoint_glob=str(tmp_path / "*.ckpt"), warmup=10)
    relay = Relay(settings, file_source(ann), lambda r: True, lambda: 999_999, clock=lambda: now[0])
    relay._deliver = lambda r: sent.append(r)  # type: ignore[method-assign]  # record instead of signalling
    relay.tick()
    assert sent == []
    now[0] = 111.0
    relay.tick()
    assert sent == [1]
