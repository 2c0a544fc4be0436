"""ftmoe.checkpoint against a folder laid out as the kubelet lays out a downwardAPI volume."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from ftmoe.checkpoint import CheckpointSignal, parse_annotations


class Kubelet:
    """Writes projected files the kubelet's way: a timestamped folder, `..data` pointing at
    it, the visible files as symlinks through `..data`, and updates by an atomic swap."""

    def __init__(self, root: Path):
        self.root, self.n = root, 0

    def write(self, annotations: dict[str, str]) -> None:
        self.n += 1
        data = self.root / f"..2026_11_23_00_00_{self.n:02d}.000000001"
        data.mkdir()
        lines = [f'{k}="{v}"' for k, v in sorted(annotations.items())]
        (data / "annotations").write_text("\n".join(lines))
        tmp = self.root / "..data_tmp"
        tmp.symlink_to(data.name)
        os.replace(tmp, self.root / "..data")  # rename(2): readers see the old or the new folder, never half
        link = self.root / "annotations"
        if not link.is_symlink():
            link.symlink_to("..data/annotations")


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_interval_requests_and_live_updates(tmp_path: Path) -> None:
    kubelet, clock = Kubelet(tmp_path), Clock()
    kubelet.write({"ftmoe.io/checkpoint-interval-seconds": "600", "ftmoe.io/checkpoint-request": "3"})
    sig = CheckpointSignal(tmp_path, clock=clock)
    assert sig.interval() == 600 and not sig.should_checkpoint(0)  # request 3 predates the job
    clock.t = 601
    assert sig.should_checkpoint(1) and sig.reason == "interval elapsed"
    sig.checkpointed(1, acknowledge=False)
    clock.t = 700
    assert not sig.should_checkpoint(2)
    # The operator shortens the interval and asks for a checkpoint now: the swap is seen at once.
    kubelet.write(
        {
            "ftmoe.io/checkpoint-interval-seconds": "300",
            "ftmoe.io/checkpoint-request": "4",
            "ftmoe.io/checkpoint-reason": "node-3 risk 0.91",
        }
    )
    assert sig.interval() == 300
    assert sig.should_checkpoint(3) and "node-3 risk 0.91" in sig.reason
    sig.checkpointed(3, acknowledge=False)
    assert sig.handled_request == 4 and not sig.should_checkpoint(4)
    assert len(list(tmp_path.glob("..2026*"))) == 2 and (tmp_path / "..data").is_symlink()


def test_without_the_volume_the_default_interval_applies(tmp_path: Path) -> None:
    clock = Clock()
    sig = CheckpointSignal(tmp_path / "absent", default_interval=100, clock=clock)
    clock.t = 99
    assert not sig.should_checkpoint()
    clock.t = 100
    assert sig.should_checkpoint()
    assert sig.acknowledge(1) is False  # not in a pod: nothing to patch


def test_go_quoted_values() -> None:
    text = 'a="x"\nb="with \\"quotes\\" and \\n newline"\nbroken\nc="\\u00e9"'
    assert parse_annotations(text) == {"a": "x", "b": 'with "quotes" and \n newline', "c": "é"}


def test_import_is_light() -> None:
    code = "import sys, ftmoe.checkpoint; print(any(m in sys.modules for m in ('torch', 'kopf', 'kubernetes')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "False"


def test_example_training_script_checkpoints_on_request_and_resumes(tmp_path: Path) -> None:
    script = Path(__file__).resolve().parents[1] / "deploy" / "examples" / "llm-training" / "train.py"
    signal_dir, ckpt = tmp_path / "ftmoe", tmp_path / "ckpt"
    signal_dir.mkdir()
    kubelet = Kubelet(signal_dir)
    kubelet.write({"ftmoe.io/checkpoint-interval-seconds": "3600"})
    run = [sys.executable, str(script), "--checkpoints", str(ckpt), "--signal", str(signal_dir)]
    subprocess.run([*run, "--steps", "5"], check=True, capture_output=True, text=True, timeout=120)
    assert not list(ckpt.glob("step-*.pt"))  # an hour-long interval: nothing saved in 5 steps
    proc = subprocess.Popen([*run, "--steps", "100000", "--step-seconds", "0.01"], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().startswith("training from step")  # the loop runs: a request now is new to it
        kubelet.write(
            {
                "ftmoe.io/checkpoint-interval-seconds": "3600",
                "ftmoe.io/checkpoint-request": "1",
                "ftmoe.io/checkpoint-reason": "node-3 risk 0.9",
            }
        )
        deadline = time.monotonic() + 30
        while not list(ckpt.glob("step-*.pt")) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert list(ckpt.glob("step-*.pt")), "no checkpoint after the request"
        proc.send_signal(signal.SIGTERM)  # an eviction: one more checkpoint, then exit
        out, _ = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0 and "request 1: node-3 risk 0.9" in out and "SIGTERM" in out
    saved = sorted(ckpt.glob("step-*.pt"))
    last = int(saved[-1].stem.split("-")[1])
    resumed = subprocess.run([*run, "--steps", str(last + 1)], check=True, capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0  # picks up at last + 1 and stops at once
