"""ftmoe_gc_seconds_total counts the collector's time per generation, installed once."""

from __future__ import annotations

import gc

from ftmoe.operator import gc_clock
from ftmoe.operator import own_metrics as M


def seconds(generation: str) -> float:
    return M.REGISTRY.get_sample_value("ftmoe_gc_seconds_total", {"generation": generation}) or 0.0


def test_a_full_collection_adds_its_time_to_generation_2_and_installing_twice_counts_once() -> None:
    gc_clock.install()
    gc_clock.install()
    assert sum(isinstance(cb, gc_clock.GcClock) for cb in gc.callbacks) == 1
    junk = [[{"i": i, "self": None} for i in range(1000)] for _ in range(200)]  # 200,000 tracked objects to walk
    before = seconds("2")
    gc.collect(2)
    assert seconds("2") > before
    del junk
