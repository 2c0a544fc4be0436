"""The garbage collector's CPU time, as ``ftmoe_gc_seconds_total{generation}``.

At 5,000 nodes the watch caches hold a few million objects, and a full (generation 2)
collection walks all of them: 0.4-0.5 CPU-seconds each in an in-process run of the
interval at that size. That time lands in whichever thread allocated last, so no phase of
``ftmoe_interval_phase_seconds`` and no profile of a function shows it; this counter does.
"""

from __future__ import annotations

import gc
import threading
import time
from typing import Any

from ftmoe.operator import own_metrics as M


class GcClock:
    """A ``gc.callbacks`` entry: CPU time of the collecting thread from each start to its stop."""

    def __init__(self) -> None:
        self.local = threading.local()  # thread_time is the calling thread's: the start is kept where it was read

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self.local.started = time.thread_time()
        elif hasattr(self.local, "started"):
            M.GC_SECONDS.labels(str(info.get("generation", ""))).inc(max(0.0, time.thread_time() - self.local.started))


def install() -> None:
    """Once per process (more calls change nothing)."""
    if not any(isinstance(cb, GcClock) for cb in gc.callbacks):
        gc.callbacks.append(GcClock())
