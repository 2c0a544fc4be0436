from __future__ import annotations

import pytest

from ftmoe.contract.dataset import Dataset
from ftmoe.simulator.config import SimConfig
from ftmoe.simulator.generate import simulate
from ftmoe.simulator.traces import TracePool, load_pool


@pytest.fixture(scope="session")
def pool() -> TracePool:
    return load_pool()


@pytest.fixture(scope="session")
def default_run(pool: TracePool) -> Dataset:
    """The default configuration, long enough for stable label shares."""
    return simulate(SimConfig(hosts=16, intervals=4000, seed=1), pool)
