"""Dataset format v1: round trip, and a clear error for each kind of bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ftmoe.contract.dataset import Dataset, DatasetError, load


def small() -> Dataset:
    rng = np.random.default_rng(0)
    return Dataset(
        features=rng.random((6, 3, 2)).astype(np.float32),
        feature_names=["cpu_utilisation", "memory_used_fraction"],
        labels=np.array([[0, 0, 1]] * 6, dtype=np.int8),
        class_names=["none", "cpu", "memory", "disk"],
        migrations=np.array([[1, 0, 2], [4, 2, 1]], dtype=np.int32),
        host_names=["a", "b", "c"],
        interval_seconds=300.0,
        metadata={"seed": 0},
    )


def write_raw(path: Path, **fields: object) -> Path:
    ds = small()
    base = {
        "features": ds.features,
        "feature_names": np.array(ds.feature_names),
        "labels": ds.labels,
        "class_names": np.array(ds.class_names),
        "migrations": ds.migrations,
        "host_names": np.array(ds.host_names),
        "interval_seconds": np.array(300.0),
        "metadata": np.array(json.dumps({"format_version": 1})),
    }
    base.update(fields)
    base = {k: v for k, v in base.items() if v is not None}
    np.savez_compressed(path, **base)
    return path


def test_round_trip(tmp_path: Path) -> None:
    ds = small()
    back = load(ds.save(tmp_path / "d.npz"))
    np.testing.assert_array_equal(back.features, ds.features)
    np.testing.assert_array_equal(back.migrations, ds.migrations)
    assert back.class_names == ds.class_names and back.host_names == ds.host_names
    assert back.metadata["seed"] == 0 and back.metadata["format_version"] == 1


def test_no_pickles_are_loaded(tmp_path: Path) -> None:
    p = tmp_path / "evil.npz"
    np.savez(p, **{k: v for k, v in np.load(small().save(tmp_path / "ok.npz")).items()}, extra=np.array([object()], dtype=object))
    load(p)  # the object array is never touched


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"features": np.zeros((6, 3), np.float32)}, r"field `features`: expected 3 dimensions"),
        (
            {"features": np.full((6, 3, 2), np.nan, np.float32)},
            r"field `features`: 36 non-finite values .* interval 0, host 0, feature 'cpu_utilisation'",
        ),
        ({"labels": np.array([[0, 0, 7]] * 6, np.int8)}, r"field `labels`: value 7 is not a class index 0..3"),
        ({"labels": np.zeros((5, 3), np.int8)}, r"field `labels`: shape \(5, 3\), expected"),
        ({"migrations": np.array([[1, 0, 9]], np.int32)}, r"field `migrations`: target host 9 does not exist \(hosts are 0..2\)"),
        ({"migrations": np.array([[60, 0, 1]], np.int32)}, r"field `migrations`: interval out of range"),
        ({"feature_names": np.array(["a"])}, r"field `feature_names`: 1 names for 2 features"),
        ({"class_names": np.array(["cpu", "memory"])}, r"field `class_names`: .* start with 'none'"),
        ({"features": None}, r"missing required field\(s\) features"),
        ({"metadata": np.array("{not json")}, r"field `metadata`: not JSON"),
    ],
)
def test_bad_input_names_the_field_and_the_fix(tmp_path: Path, fields: dict, message: str) -> None:
    with pytest.raises(DatasetError, match=message) as err:
        load(write_raw(tmp_path / "bad.npz", **fields))
    assert "Fix:" in str(err.value)


def test_not_an_npz(tmp_path: Path) -> None:
    p = tmp_path / "x.npz"
    p.write_text("hello")
    with pytest.raises(DatasetError, match="not a .npz file"):
        load(p)
