"""A stand-in training process that checkpoints the way real trainers do, for the relay tests.

--style megatron  : Megatron-LM with --exit-signal-handler: SIGTERM sets a flag, the next
                    iteration saves iter_<N>/ and latest_checkpointed_iteration.txt, then exits 0.
--style signal    : saves checkpoint-<N>/ on SIGUSR1 and goes on (save-and-continue).
--style trigger   : a Hugging Face TrainerCallback's logic: at each step end, a trigger file
                    holding a request id not seen yet sets should_save; saves checkpoint-<N>/.
Each step takes --step seconds; the process stops after --steps steps (exit 0).
"""

from __future__ import annotations

import argparse
import os
import signal
import time
from pathlib import Path


def save(out: Path, name: str, took: float) -> None:
    time.sleep(took)  # a checkpoint takes time; its folder appears when it is complete
    tmp = out / f".{name}.tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "model.bin").write_bytes(b"\0" * 16)
    tmp.rename(out / name)


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--style", choices=["megatron", "signal", "trigger"], required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--trigger-file", type=Path)
    p.add_argument("--pid-file", type=Path)
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--step", type=float, default=0.05)
    p.add_argument("--save-seconds", type=float, default=0.3)
    a = p.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    if a.pid_file:
        a.pid_file.write_text(str(os.getpid()))
    flag = {"save": False}

    def on_signal(_signum: int, _frame: object) -> None:
        flag["save"] = True

    if a.style == "megatron":
        signal.signal(signal.SIGTERM, on_signal)
    elif a.style == "signal":
        signal.signal(signal.SIGUSR1, on_signal)
    seen = ""
    for step in range(1, a.steps + 1):
        time.sleep(a.step)
        if a.style == "trigger" and a.trigger_file is not None and a.trigger_file.exists():
            request = a.trigger_file.read_text().strip()
            if request and request != seen:
                seen, flag["save"] = request, True
        if not flag["save"]:
            continue
        flag["save"] = False
        if a.style == "megatron":
            save(a.out, f"iter_{step:07d}", a.save_seconds)
            (a.out / "latest_checkpointed_iteration.txt").write_text(str(step))
            print(f"saved iteration {step} on SIGTERM; exiting", flush=True)
            return 0
        save(a.out, f"checkpoint-{step}", a.save_seconds)
        print(f"saved checkpoint-{step}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
