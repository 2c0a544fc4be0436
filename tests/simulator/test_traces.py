"""The workload really comes from the Bitbrains zip, and runs are reproducible."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest

from ftmoe.simulator.config import SimConfig
from ftmoe.simulator.generate import simulate
from ftmoe.simulator.traces import TraceError, TracePool, default_trace_path, load_pool


def test_pool_is_the_papers_filter_applied_to_the_zip(pool: TracePool) -> None:
    path = default_trace_path()
    with zipfile.ZipFile(path) as z:
        names = sorted(n for n in z.namelist() if n.endswith(".csv"))
        assert len(names) == 500
        expected = []
        for n in names:
            lines = z.read(n).decode().splitlines()
            if len(lines) > 10:
                cpu = float(lines[10].split(";")[3])  # 10th sample, "CPU usage [MHZ]"
                if 500 <= cpu <= 3000:
                    expected.append(n)
    assert list(pool.names) == expected
    assert 10 <= len(pool) < 100


def test_usage_matches_the_raw_csv(pool: TracePool) -> None:
    name = pool.names[0]
    with zipfile.ZipFile(default_trace_path()) as z:
        raw = z.read(name).decode().splitlines()[1:6]
    rows = [[float(x) for x in line.replace("\t", "").split(";")] for line in raw]
    for i, row in enumerate(rows):
        assert pool.usage[0, i, 0] == pytest.approx(row[3])  # CPU MHz
        assert pool.usage[0, i, 1] == pytest.approx(row[6] * 1024)  # memory KB -> bytes


def test_missing_archive_explains_where_to_get_it(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(TraceError, match="FTMOE_BITBRAINS"):
        load_pool(tmp_path / "nope.zip")


def test_not_a_bitbrains_csv_is_rejected(tmp_path) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(bad, "w") as z:
        z.writestr("rnd/2013-7/1.csv", "a;b\n" + "\n".join("1;2" for _ in range(20)))
    with pytest.raises(TraceError, match="expected 11 columns"):
        load_pool(bad)


def test_same_seed_same_dataset(pool: TracePool) -> None:
    a = simulate(SimConfig(hosts=8, intervals=300, seed=7), pool)
    b = simulate(SimConfig(hosts=8, intervals=300, seed=7), pool)
    c = simulate(SimConfig(hosts=8, intervals=300, seed=8), pool)
    np.testing.assert_array_equal(a.features, b.features)
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_array_equal(a.migrations, b.migrations)
    assert not np.array_equal(a.features, c.features)
