"""The fault model: the paper's label shares, causes, precursors and the oracle."""

from __future__ import annotations

import numpy as np
import pytest

from ftmoe.contract.dataset import Dataset
from ftmoe.contract.features import FEATURE_NAMES
from ftmoe.contract.oracle import detectable_mask, oracle_scores
from ftmoe.simulator.config import PAPER_SHARES, FaultConfig
from ftmoe.simulator.faults import hazards
from ftmoe.simulator.generate import card


def test_default_config_reproduces_the_papers_shares(default_run: Dataset) -> None:
    shares = card(default_run)["class_shares"]
    for name, target in PAPER_SHARES.items():
        assert shares[name] == pytest.approx(target, rel=0.20), (name, shares[name], target)


def test_hazards_are_positive_and_ordered_by_share() -> None:
    h = hazards(FaultConfig())
    assert (h > 0).all()
    # memory has the largest share and the longest duration but still the largest hazard
    assert h[1] > h[2] and h[1] > h[0]


def test_every_fault_is_recorded_with_its_cause(default_run: Dataset) -> None:
    records = default_run.fault_records()
    labels = default_run.labels
    assert len(records) > 100
    for r in records[:200]:
        end = r["end"] if r["end"] is not None else labels.shape[0]
        assert (labels[r["onset"] : end, r["host"]] == r["fault_type"]).all()
        if r["precursor_start"] is not None:
            assert r["precursor_start"] < r["onset"]
            assert (labels[r["precursor_start"] : r["onset"], r["host"]] == 0).all()
    causes = {r["cause"] for r in records}
    assert {"memory-leak", "disk-filling", "cpu-runaway", "cpu-thermal-throttling"} <= causes


def _pre_onset_shift(ds: Dataset, cause: str, feature: str, predictable: bool) -> list[float]:
    """Feature value just before onset minus the host's value well before any precursor."""
    k = FEATURE_NAMES.index(feature)
    out = []
    for r in ds.fault_records():
        if r["cause"] != cause or (r["precursor_start"] is not None) != predictable:
            continue
        ref = (r["precursor_start"] if predictable else r["onset"]) - 3
        if ref < 0:
            continue
        h = r["host"]
        # the host must be healthy at the reference point
        if ds.labels[ref, h] != 0:
            continue
        out.append(float(ds.features[r["onset"] - 1, h, k] - ds.features[ref, h, k]))
    return out


@pytest.mark.parametrize(
    ("cause", "feature", "sign"),
    [
        ("memory-leak", "memory_used_fraction", 1),
        ("disk-filling", "disk_used_fraction", 1),
        ("cpu-thermal-throttling", "cpu_frequency_ratio", -1),
        ("cpu-runaway", "cpu_utilisation", 1),
        ("disk-failing-device", "disk_io_latency_seconds", 1),
    ],
)
def test_precursors_present_before_predictable_absent_before_sudden(default_run: Dataset, cause: str, feature: str, sign: int) -> None:
    before_predictable = np.array(_pre_onset_shift(default_run, cause, feature, True)) * sign
    before_sudden = np.array(_pre_onset_shift(default_run, cause, feature, False)) * sign
    assert len(before_predictable) >= 10 and len(before_sudden) >= 3
    # Predictable faults: the cause has moved the metric by onset, clearly and usually.
    assert np.median(before_predictable) > 0
    assert (before_predictable > 0).mean() > 0.7
    # Sudden faults: nothing moved beforehand beyond ordinary workload noise.
    assert np.median(before_predictable) > 3 * abs(np.median(before_sudden))


def test_oracle_by_hand() -> None:
    labels = np.zeros((10, 2), dtype=np.int8)
    labels[4:7, 0] = 2  # predictable: precursor from 1
    labels[5:8, 1] = 1  # sudden
    records = [
        {"host": 0, "fault_type": 2, "cause": "memory-leak", "precursor_start": 1, "onset": 4, "end": 7},
        {"host": 1, "fault_type": 1, "cause": "cpu-runaway", "precursor_start": None, "onset": 5, "end": 8},
    ]
    m = detectable_mask(records, 10, 2, lead=1)
    assert m[4:7, 0].all()  # evidence since interval 1
    assert not m[5, 1] and m[6:8, 1].all()  # the first interval of a sudden fault is a surprise
    s = oracle_scores(labels, records, lead=1)
    assert s["recall"] == pytest.approx(5 / 6)
    assert s["precision"] == 1.0
    assert s["f1"] == pytest.approx(2 * (5 / 6) / (1 + 5 / 6))
    s4 = oracle_scores(labels, records, lead=4)
    # host 0: evidence at 1 -> detectable from 5; host 1: none of its 3 intervals
    assert s4["recall"] == pytest.approx(2 / 6)


def test_card_reports_oracle_and_predictable_share(default_run: Dataset) -> None:
    c = card(default_run)
    assert 0.7 < c["predictable_share"] < 0.9
    f1 = [o["f1"] for o in c["oracle"]]
    assert f1 == sorted(f1, reverse=True)  # a longer lead can only be harder
    assert 0.5 < f1[-1] < f1[0] <= 1.0
