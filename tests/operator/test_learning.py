"""Ground truth from the cluster, the experience buffer, and self-grading."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ftmoe.operator.learning.experience import Experience
from ftmoe.operator.learning.grading import grade
from ftmoe.operator.learning.ground_truth import observed_fault

CLASSES = ["none", "cpu", "memory", "disk"]


def node(**conds: str) -> dict[str, Any]:
    return {"metadata": {"name": "n"}, "status": {"conditions": [{"type": k, "status": v} for k, v in conds.items()]}}


def test_label_mapping_from_conditions_pods_and_readiness() -> None:
    assert observed_fault(node(Ready="True", MemoryPressure="True"), [], 0) == "memory"
    assert observed_fault(node(Ready="True", DiskPressure="True"), [], 0) == "disk"
    assert observed_fault(node(Ready="True", PIDPressure="True"), [], 0) == "cpu"
    assert observed_fault(node(Ready="True", KernelDeadlock="True"), [], 0) == "cpu"  # node-problem-detector
    assert observed_fault(node(Ready="True", MemoryPressure="False"), [], 0) is None
    oom = {"status": {"containerStatuses": [{"lastState": {"terminated": {"reason": "OOMKilled", "finishedAt": "2026-01-01T00:00:10Z"}}}]}}
    assert observed_fault(node(Ready="True"), [oom], 1767225600.0) == "memory"
    assert observed_fault(node(Ready="True"), [oom], 1767225700.0) is None  # an old OOM kill is not this interval's
    evicted = {"status": {"reason": "Evicted", "message": "The node was low on resource: ephemeral-storage."}}
    assert observed_fault(node(Ready="True"), [evicted], 0) == "disk"
    assert observed_fault(node(Ready="Unknown"), [], 0) == "unknown"
    assert observed_fault(node(Ready="False"), [evicted], 0) == "disk"
    assert observed_fault(node(Ready="True", Custom="True"), [], 0, {"Custom": "disk"}) == "disk"  # the policy's table


def test_buffer_is_bounded_handles_new_nodes_and_survives_a_restart(tmp_path: Path) -> None:
    buf = Experience([], ["f1", "f2"], CLASSES)
    for t in range(10):
        nodes = ["a", "b"] if t < 5 else ["a", "b", "c"]
        buf.append(
            float(t),
            nodes,
            np.full((len(nodes), 2), t, np.float32),
            np.full(len(nodes), 0.1, np.float32),
            np.ones(len(nodes), np.int8),
            np.zeros(len(nodes), np.int8),
            max_intervals=8,
            retention=1e9,
        )
    assert len(buf) == 8 and buf.nodes == ["a", "b", "c"] and buf.values.shape == (8, 3, 2)
    assert np.isnan(buf.values[0, 2]).all() and buf.values[-1, 2, 0] == 9  # c joined at t=5
    buf.append(
        100.0,
        ["a"],
        np.zeros((1, 2), np.float32),
        np.zeros(1, np.float32),
        np.zeros(1, np.int8),
        np.zeros(1, np.int8),
        max_intervals=8,
        retention=50,
    )
    assert list(buf.times) == [100.0]  # retention drops what is older than 50 s
    path = tmp_path / "p.npz"
    buf.save(path)
    back = Experience.load(path, ["f1", "f2"], CLASSES)
    assert back.nodes == buf.nodes and np.array_equal(back.times, buf.times)
    assert len(Experience.load(path, ["other"], CLASSES)) == 0  # another model's features: start afresh
    path.write_bytes(b"not an npz")
    assert len(Experience.load(path, ["f1", "f2"], CLASSES)) == 0


def test_the_buffer_holds_what_a_copy_per_interval_would_through_joins_trims_and_a_clock_step_back() -> None:
    """The buffer writes one row per interval into arrays with room to spare; its contents
    match a buffer rebuilt by concatenation every interval (the simple way), step by step."""
    rng = np.random.default_rng(3)
    buf = Experience([], ["f1", "f2"], CLASSES)
    ref: dict[str, Any] = {
        "nodes": [],
        "times": np.zeros(0),
        "values": np.zeros((0, 0, 2), np.float32),
        "risk": np.zeros((0, 0), np.float32),
    }
    t = 0.0
    for step in range(300):
        t += -400.0 if step == 200 else 10.0  # one clock step back
        nodes = [f"n{i}" for i in rng.choice(12, size=int(rng.integers(1, 12)), replace=False)]
        vals, risk = rng.random((len(nodes), 2)).astype(np.float32), rng.random(len(nodes)).astype(np.float32)
        buf.append(t, nodes, vals, risk, np.ones(len(nodes), np.int8), np.full(len(nodes), 2, np.int8), max_intervals=40, retention=300.0)
        new = [n for n in nodes if n not in ref["nodes"]]
        T = len(ref["times"])
        ref["nodes"] += new
        ref["values"] = np.concatenate([ref["values"], np.full((T, len(new), 2), np.nan, np.float32)], axis=1)
        ref["risk"] = np.concatenate([ref["risk"], np.full((T, len(new)), np.nan, np.float32)], axis=1)
        row_v = np.full((1, len(ref["nodes"]), 2), np.nan, np.float32)
        row_r = np.full((1, len(ref["nodes"])), np.nan, np.float32)
        idx = [ref["nodes"].index(n) for n in nodes]
        row_v[0, idx], row_r[0, idx] = vals, risk
        ref["times"] = np.append(ref["times"], t)
        ref["values"], ref["risk"] = np.concatenate([ref["values"], row_v]), np.concatenate([ref["risk"], row_r])
        keep = ref["times"] >= t - 300.0
        keep[: max(0, len(keep) - 40)] = False
        ref["times"], ref["values"], ref["risk"] = ref["times"][keep], ref["values"][keep], ref["risk"][keep]
        assert buf.nodes == ref["nodes"]
        np.testing.assert_array_equal(buf.times, ref["times"])
        np.testing.assert_array_equal(buf.values, ref["values"])
        np.testing.assert_array_equal(buf.risk, ref["risk"])
        assert (buf.predicted[np.isfinite(buf.risk)] == 1).all() and (buf.observed[np.isnan(buf.risk)] == 0).all()
    assert len(buf) <= 40


def test_grading_hits_false_alarms_pending_and_leads() -> None:
    times = np.arange(0, 100, 10, dtype=float)  # 10 intervals of 10 s, horizon 30 s
    risk = np.zeros((10, 3), np.float32)
    observed = np.zeros((10, 3), np.int8)
    predicted = np.full((10, 3), 2, np.int8)
    risk[2:5, 0] = 0.9
    observed[4:6, 0] = 2  # node 0: alarm at 20, memory fault at 40: hit, lead 20 s
    risk[1, 1] = 0.9  # node 1: alarm at 10, nothing by 40: false alarm
    observed[7:9, 2] = 3  # node 2: disk fault at 70, no alarm: missed
    risk[9, 1] = 0.95  # node 1 again at 90: pending (horizon not over)
    g = grade(times, risk, observed, predicted, ["n0", "n1", "n2"], CLASSES, threshold=0.6, horizon=30)
    assert (g.alarms, g.hits, g.false_alarms, g.pending) == (3, 1, 1, 1)
    assert (g.faults, g.caught) == (2, 1) and g.leads == [20.0]
    assert g.precision == 0.5 and g.recall == 0.5 and g.f1 == 0.5
    assert g.per_type["memory"]["recall"] == 1.0 and g.per_type["disk"]["recall"] == 0.0
    assert g.recent[0]["outcome"] == "pending" and {r["outcome"] for r in g.recent} == {"hit", "false alarm", "pending"}


def test_a_flapping_signal_is_one_fault_and_an_alarm_after_onset_is_late_not_caught() -> None:
    """The demo's trace: MemoryPressure set at 40 s, cleared at 100 s, set again at 110 s by
    a stale heartbeat, cleared at 130 s; the alarm rose at 50 s, after the onset."""
    times = np.arange(0, 200, 10, dtype=float)
    risk = np.zeros((20, 1), np.float32)
    observed = np.zeros((20, 1), np.int8)
    predicted = np.full((20, 1), 2, np.int8)
    observed[4:10, 0] = 2
    observed[11:13, 0] = 2
    risk[5:12, 0] = 0.99
    g = grade(times, risk, observed, predicted, ["node-3"], CLASSES, threshold=0.6, horizon=60)
    assert g.faults == 1, "the flap is the same fault"
    assert (g.caught, g.late, g.delays) == (0, 1, [10.0])
    assert g.recall == 0.0 and g.leads == []
    apart = grade(times, risk, observed, predicted, ["node-3"], CLASSES, threshold=0.6, horizon=60, merge_gap=5)
    assert apart.faults == 2 and apart.caught == 1, "counted apart, the alarm of the first 'catches' the second"


def test_report_formats_scores_types_and_recent_alarms() -> None:
    from ftmoe.operator.cli import format_report

    g = {
        "precision": 0.5,
        "recall": 1.0,
        "meanLeadSeconds": 10.0,
        "hits": 1,
        "falseAlarms": 1,
        "pending": 0,
        "faults": 1,
        "caught": 1,
        "since": "2026-01-01T00:00:00Z",
        "perType": {"memory": {"alarms": 2, "hits": 1, "precision": 0.5, "faults": 1, "caught": 1, "recall": 1.0}},
        "recentAlarms": [{"time": "2026-01-01T00:00:10Z", "node": "n1", "risk": 0.9, "predictedType": "memory", "outcome": "hit"}],
    }
    text = format_report("p", {"thresholds": {"cordon": 0.6}, "horizon": "30s"}, g)
    assert "precision 50.0%" in text and "recall    100.0% (1 of 1 faults alarmed at or before their onset" in text
    assert "mean lead 10s" in text and "onset = the first interval the operator saw" in text
    assert "memory" in text and "n1" in text and "hit" in text


def test_the_buffer_cap_holds_memory_at_thousands_of_nodes() -> None:
    from ftmoe.operator.learning.learner import BUFFER_BYTES, buffer_cap

    assert buffer_cap(2880, 16, 13) == 2880  # small clusters keep what the policy asks
    big = buffer_cap(2880, 5000, 13)
    assert big == 1032 and big * 5000 * 13 * 4 <= BUFFER_BYTES
    assert buffer_cap(2880, 10**7, 13) == 10  # never below the field's own minimum
