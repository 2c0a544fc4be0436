"""Converters into v1: PreGAN's layout and a Prometheus range export."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ftmoe.contract.dataset import DatasetError, load
from ftmoe.simulator.convert import from_pregan, from_prometheus, migrations_from_assignments


def test_pregan_fixture(tmp_path: Path) -> None:
    T, H, C = 5, 3, 4
    ts = np.arange(T * 3 * H, dtype=float).reshape(T, 3 * H) / 100
    # container 0 stays on host 0; container 1 moves 1 -> 2 at t=2; container 2 appears at t=3
    assign = np.array([[0, 1, -1, -1], [0, 1, -1, -1], [0, 2, -1, -1], [0, 2, 1, -1], [0, 2, 0, -1]])
    sched = np.zeros((T, C, H))
    for t in range(T):
        for c in range(C):
            if assign[t, c] >= 0:
                sched[t, c, assign[t, c]] = 1
    np.save(tmp_path / "time_series.npy", ts)
    np.save(tmp_path / "schedule_series.npy", sched)
    labels = np.zeros((T, H), dtype=np.int8)
    labels[3, 1] = 2
    np.save(tmp_path / "labels.npy", labels)
    ds = from_pregan(tmp_path / "time_series.npy", tmp_path / "schedule_series.npy", tmp_path / "labels.npy")
    assert ds.shape == (T, H, 3)
    assert ds.features[2, 1].tolist() == pytest.approx(ts[2, 3:6].tolist())
    assert ds.migrations.tolist() == [[2, 1, 2], [4, 1, 0]]
    assert ds.labels[3, 1] == 2
    back = load(ds.save(tmp_path / "out.npz"))
    assert back.feature_names == ["cpu_utilisation", "memory_used_fraction", "disk_used_fraction"]


def test_pregan_without_labels_is_marked_unlabelled(tmp_path: Path) -> None:
    np.save(tmp_path / "ts.npy", np.ones((4, 6)))
    np.save(tmp_path / "ss.npy", np.zeros((4, 1, 2)))
    ds = from_pregan(tmp_path / "ts.npy", tmp_path / "ss.npy")
    assert (ds.labels == 0).all() and "absent" in ds.metadata["labels"]


def test_pregan_shape_errors(tmp_path: Path) -> None:
    np.save(tmp_path / "ts.npy", np.ones((4, 5)))
    np.save(tmp_path / "ss.npy", np.zeros((4, 1, 2)))
    with pytest.raises(DatasetError, match=r"expected \[T, 3\*H\]"):
        from_pregan(tmp_path / "ts.npy", tmp_path / "ss.npy")


def test_assignments_to_migrations() -> None:
    assign = np.array([[0, -1], [1, -1], [1, 0]])
    assert migrations_from_assignments(assign).tolist() == [[1, 0, 1]]


def prom_matrix(values: dict[str, list[tuple[float, float]]]) -> dict:
    return {
        "status": "success",
        "data": {
            "resultType": "matrix",
            "result": [{"metric": {"node": n}, "values": [[ts, str(v)] for ts, v in pts]} for n, pts in values.items()],
        },
    }


def test_prometheus_export(tmp_path: Path) -> None:
    export = {
        "cpu_utilisation": prom_matrix({"n1": [(0, 0.1), (60, 0.2), (120, 0.3)], "n2": [(0, 0.5), (120, 0.7)]}),
        "memory_used_fraction": prom_matrix({"n1": [(0, 0.4), (60, 0.4), (120, 0.9)], "n2": [(0, 0.2), (60, 0.2), (120, 0.2)]}),
    }
    (tmp_path / "export.json").write_text(json.dumps(export))
    (tmp_path / "faults.json").write_text(json.dumps([{"node": "n1", "type": "memory", "start": 100, "end": 200}]))
    ds = from_prometheus(tmp_path / "export.json", faults=tmp_path / "faults.json")
    assert ds.shape == (3, 2, 2) and ds.host_names == ["n1", "n2"] and ds.interval_seconds == 60
    assert ds.features[:, 1, 0].tolist() == pytest.approx([0.5, 0.5, 0.7])  # the gap carries 0.5 forward
    assert ds.labels[:, 0].tolist() == [0, 0, 2]
    load(ds.save(tmp_path / "out.npz"))


def test_prometheus_export_without_node_label(tmp_path: Path) -> None:
    export = {
        "cpu_utilisation": {
            "status": "success",
            "data": {"resultType": "matrix", "result": [{"metric": {"instance": "x"}, "values": [[0, "1"]]}]},
        }
    }
    (tmp_path / "e.json").write_text(json.dumps(export))
    with pytest.raises(DatasetError, match=r"no 'node' label.*by \(node\)"):
        from_prometheus(tmp_path / "e.json")


def test_prometheus_export_missing_feature_for_a_node(tmp_path: Path) -> None:
    export = {"a": prom_matrix({"n1": [(0, 1.0)], "n2": [(0, 1.0)]}), "b": prom_matrix({"n1": [(0, 1.0)]})}
    (tmp_path / "e.json").write_text(json.dumps(export))
    with pytest.raises(DatasetError, match="feature 'b' has no samples for node 'n2'"):
        from_prometheus(tmp_path / "e.json")
