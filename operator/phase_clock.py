"""Where an interval's wall time goes: laps recorded into ``ftmoe_interval_phase_seconds``.

At scale the first question about a slow interval is which part is slow (Prometheus, the
model, or the API writes); one histogram per phase answers it from the operator's own
/metrics, without a profiler.
"""

from __future__ import annotations

import time

from ftmoe.operator import own_metrics as M


class PhaseClock:
    def __init__(self, policy: str):
        self.policy = policy
        self.last = time.perf_counter()

    def lap(self, phase: str) -> None:
        """Record the time since the previous lap (or the start) as ``phase``."""
        now = time.perf_counter()
        M.INTERVAL_PHASE_SECONDS.labels(self.policy, phase).observe(now - self.last)
        self.last = now
