"""Python's full garbage collections on a clock instead of its allocation heuristic.

Python runs a full collection whenever the objects promoted to its oldest generation since
the last one reach a quarter of those that survived it. At 5,000 nodes the watches promote
thousands of objects a second (every node's status is replaced every 100 s), and each full
collection walks every cached object: 0.9 of the 3.3 CPU-seconds of a 30 s interval went
there (`bench/operator.py --scale 5000`, ``ftmoe_gc_seconds_total{generation="2"}``). The
caches are trees of dicts and lists, freed by reference counting the moment they are
replaced; the few reference cycles mostly die young, where the young collections (still on
Python's schedule) find them. So the operator switches the automatic full collection off and
runs one every ``--gc-full-every`` seconds on a thread of its own: what it reclaims waits at
most that long. 0 keeps Python's own schedule.
"""

from __future__ import annotations

import gc
import logging
import threading

log = logging.getLogger("ftmoe.operator.gc")
DEFAULT_EVERY = 300.0
NEVER = 2**31 - 1  # the oldest generation's threshold: gen-1 collections before a full one


class FullCollections:
    def __init__(self, every: float = DEFAULT_EVERY):
        self.every = every
        self.stopped = threading.Event()
        self.thresholds = gc.get_threshold()
        self._thread: threading.Thread | None = None

    def start(self) -> FullCollections:
        if self.every > 0 and self._thread is None:
            young, middle, _ = self.thresholds
            gc.set_threshold(young, middle, NEVER)
            self._thread = threading.Thread(target=self._run, name="full-gc", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Python's own schedule again; the thread wakes and ends at once."""
        self.stopped.set()
        if self._thread is not None:
            gc.set_threshold(*self.thresholds)
            self._thread = None

    def _run(self) -> None:
        while not self.stopped.wait(self.every):
            found = gc.collect()
            log.debug("full collection: %d unreachable objects", found)
