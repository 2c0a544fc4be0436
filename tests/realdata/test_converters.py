"""`ftmoe dataset from-asd` and `from-nezha` on tiny files laid out like the real ones."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from ftmoe.cli import main
from ftmoe.contract.dataset import DatasetError, load
from ftmoe.simulator.convert_real import ASD_SERVERS, NEZHA_COLUMNS, from_asd, from_nezha


@pytest.fixture()
def asd_folder(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    arrays = {}
    for i, s in enumerate(ASD_SERVERS):
        train_len = 40 if i < 11 else 30  # the last server's training series is shorter, as omi-12's
        arrays[f"{s}_train"] = rng.random((train_len, 19), dtype=np.float32)
        arrays[f"{s}_test"] = rng.random((20, 19), dtype=np.float32)
        label = np.zeros(20, dtype=np.int8)
        label[5:8] = 1 if i % 2 == 0 else 0
        arrays[f"{s}_test_label"] = label
    np.savez(tmp_path / "asd.npz", **arrays)
    (tmp_path / "interpretation_labels.json").write_text(
        json.dumps({s: [{"start": 5, "end": 7, "metrics": [1]}] for s in ASD_SERVERS[::2]})
    )
    return tmp_path


def test_asd_keeps_the_unlabelled_training_days_as_history_only(asd_folder: Path) -> None:
    ds = from_asd(asd_folder)
    assert ds.shape == (30 + 20, 12, 19)  # prefix cut to the shortest training series, aligned at its end
    assert not ds.labelled_mask[:30].any() and ds.labelled_mask[30:].all()
    assert ds.class_names == ["none", "anomaly"] and ds.detection_only
    assert ds.labels[:30].sum() == 0 and ds.labels[35:38, 0].all() and not ds.labels[35:38, 1].any()
    # the last 30 training points of server 1, unchanged
    with np.load(asd_folder / "asd.npz") as npz:
        np.testing.assert_array_equal(ds.features[:30, 0], npz["omi-1_train"][-30:])
    records = ds.fault_records()
    assert len(records) == 6 and {r["onset"] for r in records} == {35} and all(r["end"] == 38 for r in records)


def test_asd_cli_writes_a_loadable_v1_file(asd_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "asd-v1.npz"
    assert main(["dataset", "from-asd", str(asd_folder), "--out", str(out)]) == 0
    ds = load(out)
    assert not ds.labelled_mask[:30].any()
    assert "unlabelled_prefix" in capsys.readouterr().out


def test_asd_missing_folder_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dataset", "from-asd", str(tmp_path / "nowhere")]) != 0
    err = capsys.readouterr().err
    assert "asd.npz" in err and "Traceback" not in err
    with pytest.raises(DatasetError, match="asd.npz"):
        from_asd(tmp_path)


def _write_pod(path: Path, start: str, minutes: int, skip: set[int] = frozenset()) -> None:  # type: ignore[assignment]
    from datetime import datetime, timedelta

    t0 = datetime.strptime(start, "%Y-%m-%d %H:%M:%S")
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["Time", "TimeStamp", "PodName", *NEZHA_COLUMNS])
        for m in range(minutes):
            if m in skip:
                continue
            stamp = (t0 + timedelta(minutes=m, seconds=19)).strftime("%Y-%m-%d %H:%M:%S") + ".607 +0000 UTC m=+0.1"
            w.writerow([stamp, "1861140279", path.name, *[float(m % 7 + k) for k in range(len(NEZHA_COLUMNS))]])


@pytest.fixture()
def nezha_folder(tmp_path: Path) -> Path:
    for day, pods, start in (
        ("2023-01-29", ["ts-a-service-866bd68c97-xcqfx", "ts-b-service-5dc8d4f9fd-46997"], "2023-01-29 08:00:00"),
        ("2023-01-30", ["ts-a-service-866bd68c97-dzqgd", "ts-b-service-5dc8d4f9fd-llznp"], "2023-01-30 11:00:00"),
    ):
        metric = tmp_path / "rca_data" / day / "metric"
        metric.mkdir(parents=True)
        for i, pod in enumerate(pods):
            _write_pod(metric / f"{pod}_metric.csv", start, 30, skip={10} if i == 0 else set())
        (metric / "front_service.csv").write_text("not a pod\n")
        t = start[:-5] + "12:40"
        faults = {
            "08": [
                {"inject_time": t, "inject_timestamp": "0", "inject_pod": pods[1], "inject_type": "cpu_contention"},
                {"inject_time": start[:-5] + "20:05", "inject_timestamp": "0", "inject_pod": pods[0], "inject_type": "return"},
            ]
        }
        (tmp_path / "rca_data" / day / f"{day}-fault_list.json").write_text(json.dumps(faults))
    return tmp_path


def test_nezha_maps_types_to_classes_and_services_to_hosts(nezha_folder: Path) -> None:
    ds = from_nezha(nezha_folder, "train-ticket", fault_minutes=4)
    assert ds.host_names == ["ts-a-service", "ts-b-service"]  # one host per service across both days
    assert ds.class_names == ["none", "cpu", "network", "code"]
    assert ds.shape[0] == 60 and ds.breaks == [30]
    b = ds.host_names.index("ts-b-service")
    a = ds.host_names.index("ts-a-service")
    # the injection minute (12:40 -> minute 12 of the grid starting 08:00) and 4 minutes after
    assert ds.labels[12:16, b].tolist() == [1, 1, 1, 1] and ds.labels[16, b] == 0
    assert ds.labels[20:24, a].tolist() == [3] * 4
    assert ds.labels[42:46, b].tolist() == [1] * 4  # the second day, after the break
    # a missing minute is filled from the previous one and stays labelled
    np.testing.assert_array_equal(ds.features[10, a], ds.features[9, a])
    assert ds.labelled_mask[10]
    assert len(ds.fault_records()) == 4


def test_nezha_cli_and_bad_system(nezha_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "n.npz"
    assert main(["dataset", "from-nezha", str(nezha_folder), "--out", str(out)]) == 0
    assert load(out).breaks == [30]
    with pytest.raises(DatasetError, match="--system"):
        from_nezha(nezha_folder, "sock-shop")
