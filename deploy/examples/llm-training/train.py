"""A small PyTorch training loop that follows the operator's checkpoint signal.

It checkpoints when ftmoe.checkpoint says so (the interval the operator computed from
node risk, or an explicit "checkpoint now"), resumes from the newest checkpoint at
start, and checkpoints once more on SIGTERM (an eviction) within the pod's grace period.

    python train.py --checkpoints /checkpoints --signal /etc/ftmoe --steps 100000
"""

from __future__ import annotations

import argparse
import signal
import time
from pathlib import Path

import torch
from torch import nn

from ftmoe.checkpoint import CheckpointSignal


def save(model: nn.Module, opt: torch.optim.Optimizer, step: int, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".step-{step}.pt"
    torch.save({"step": step, "model": model.state_dict(), "opt": opt.state_dict()}, tmp)
    tmp.replace(folder / f"step-{step:09d}.pt")  # a crash mid-save never leaves a torn file under the real name
    for old in sorted(folder.glob("step-*.pt"))[:-3]:
        old.unlink()


def resume(model: nn.Module, opt: torch.optim.Optimizer, folder: Path) -> int:
    latest = max(folder.glob("step-*.pt"), default=None)
    if latest is None:
        return 0
    state = torch.load(latest, weights_only=True)
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["opt"])
    return int(state["step"]) + 1


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--checkpoints", type=Path, default=Path("/checkpoints"))
    p.add_argument("--signal", default="/etc/ftmoe")
    p.add_argument("--steps", type=int, default=100_000)
    p.add_argument("--step-seconds", type=float, default=0.0, help="sleep per step, to stand in for a bigger model")
    args = p.parse_args()

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 256), nn.GELU(), nn.Linear(256, 64))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    step = resume(model, opt, args.checkpoints)
    sig = CheckpointSignal(args.signal, distributed=torch.distributed.is_available() and torch.distributed.is_initialized())
    stopping = False

    def on_term(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_term)
    print(f"training from step {step}, checkpoint interval {sig.interval():.0f}s", flush=True)
    while step < args.steps:
        x = torch.randn(32, 64)
        loss = nn.functional.mse_loss(model(x), x)
        opt.zero_grad()
        loss.backward()
        opt.step()
        time.sleep(args.step_seconds)
        due = sig.should_checkpoint(step)  # every step, on every rank: it also agrees across ranks
        if stopping or due:
            # A SIGTERM that lands while a requested checkpoint is being saved is served by it.
            why = "; ".join(r for r in (sig.reason if due else "", "SIGTERM" if stopping else "") if r)
            save(model, opt, step, args.checkpoints)
            sig.checkpointed(step)
            print(f"step {step}: checkpoint ({why}), loss {loss.item():.4f}, interval {sig.interval():.0f}s", flush=True)
        if stopping:
            print(f"step {step}: exiting on SIGTERM, checkpoint saved", flush=True)
            return
        step += 1


if __name__ == "__main__":
    main()
