"""ftmoe_gc_seconds_total counts the collector's time per generation, installed once; full
collections run on the operator's clock (operator/full_collections.py)."""

from __future__ import annotations

import gc
import time

import pytest

from ftmoe.operator import gc_clock
from ftmoe.operator import own_metrics as M
from ftmoe.operator.full_collections import NEVER, FullCollections


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


def test_full_collections_run_on_the_clock_with_pythons_own_trigger_off() -> None:
    before_thresholds = gc.get_threshold()
    gc_clock.install()
    full = FullCollections(0.2).start()
    try:
        assert gc.get_threshold()[2] == NEVER and gc.get_threshold()[:2] == before_thresholds[:2]
        count = gc.get_stats()[2]["collections"]
        deadline = time.monotonic() + 10  # a loaded machine wakes the thread late; three wake-ups are enough
        while gc.get_stats()[2]["collections"] - count < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert gc.get_stats()[2]["collections"] - count >= 3
    finally:
        full.stop()
    assert gc.get_threshold() == before_thresholds
    assert FullCollections(0).start().thresholds == gc.get_threshold() == before_thresholds  # 0: Python's own schedule


def test_a_negative_gc_full_every_is_refused_by_name(capsys: pytest.CaptureFixture[str]) -> None:
    from ftmoe.cli import main

    assert main(["operator", "run", "--gc-full-every", "-1"]) != 0
    assert "--gc-full-every must be 0" in capsys.readouterr().err
