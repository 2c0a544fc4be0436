"""Dataset format v1: one compressed .npz per dataset (docs/dataset-format.md).

The loader validates every field and names the field and the fix on bad input, so a
user's own data fails loudly and early rather than training a model on garbage.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

FORMAT_VERSION = 1
REQUIRED = ("features", "feature_names", "labels", "class_names", "interval_seconds")
OPTIONAL = ("migrations", "host_names", "labelled", "metadata")


class DatasetError(ValueError):
    """The file is not a valid v1 dataset; the message names the field and the fix."""


@dataclass
class Dataset:
    features: np.ndarray  # float32 [T, H, F]
    feature_names: list[str]
    labels: np.ndarray  # int8 [T, H], 0 = no fault, k = class_names[k]
    class_names: list[str]
    migrations: np.ndarray  # int32 [M, 3]: interval, source host, target host
    host_names: list[str]
    interval_seconds: float
    metadata: dict[str, Any] = field(default_factory=dict)
    # False for intervals whose labels are unknown (e.g. ASD's unlabelled training days):
    # their features may be read (normalisation, the history of a window), their labels never.
    labelled: np.ndarray | None = None  # bool [T]; None = every interval labelled

    @property
    def shape(self) -> tuple[int, int, int]:
        T, H, F = self.features.shape
        return T, H, F

    @property
    def detection_only(self) -> bool:
        """One fault class: typing metrics do not apply (reported as n/a, never as 0)."""
        return len(self.class_names) == 2

    @property
    def labelled_mask(self) -> np.ndarray:
        return np.ones(self.shape[0], dtype=bool) if self.labelled is None else self.labelled.astype(bool)

    @property
    def breaks(self) -> list[int]:
        """Intervals where a new, separate recording starts: no window may span one."""
        return sorted(int(b) for b in self.metadata.get("breaks", []) if 0 < int(b) < self.shape[0])

    def fault_records(self) -> list[dict[str, Any]]:
        """The simulator's fault records, or, for real data, one record per labelled
        segment (a run of one fault class on one host): onset = its first interval."""
        if "faults" in self.metadata:
            return list(self.metadata["faults"])
        return labelled_segments(self.labels, self.labelled_mask)

    def slice(self, start: int, stop: int) -> Dataset:
        """Intervals [start, stop), migrations renumbered from 0."""
        m = self.migrations
        keep = (m[:, 0] >= start) & (m[:, 0] < stop)
        mig = m[keep].copy()
        mig[:, 0] -= start
        meta = dict(self.metadata, sliced_from=[start, stop])
        if "breaks" in meta:
            meta["breaks"] = [b - start for b in self.breaks if start < b < stop]
        labelled = None if self.labelled is None else self.labelled[start:stop]
        return Dataset(
            self.features[start:stop],
            self.feature_names,
            self.labels[start:stop],
            self.class_names,
            mig,
            self.host_names,
            self.interval_seconds,
            meta,
            labelled,
        )

    def save(self, path: str | Path) -> Path:
        validate(self)
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = dict(self.metadata, format_version=FORMAT_VERSION)
        with path.open("wb") as fh:
            np.savez_compressed(
                fh,
                features=self.features.astype(np.float32),
                feature_names=np.array(self.feature_names, dtype=str),
                labels=self.labels.astype(np.int8),
                class_names=np.array(self.class_names, dtype=str),
                migrations=self.migrations.astype(np.int32).reshape(-1, 3),
                host_names=np.array(self.host_names, dtype=str),
                interval_seconds=np.array(float(self.interval_seconds)),
                metadata=np.array(json.dumps(meta)),
                labelled=self.labelled_mask,
            )
        return path


def labelled_segments(labels: np.ndarray, labelled: np.ndarray | None = None) -> list[dict[str, Any]]:
    """Runs of one non-zero class per host, as fault records without a precursor."""
    T, H = labels.shape
    lab = labels * (np.ones(T, dtype=bool) if labelled is None else labelled)[:, None]
    out: list[dict[str, Any]] = []
    for h in range(H):
        col = lab[:, h].astype(np.int64)
        change = np.flatnonzero(np.diff(np.concatenate([[0], col, [0]])) != 0)
        for start, stop in zip(change[:-1], change[1:]):
            if col[start] != 0:
                out.append(
                    {
                        "host": h,
                        "fault_type": int(col[start]),
                        "cause": "labelled",
                        "precursor_start": None,
                        "onset": int(start),
                        "end": int(stop) if stop < T else None,
                    }
                )
    out.sort(key=lambda r: (r["onset"], r["host"]))
    return out


def _fail(field_name: str, problem: str, fix: str) -> DatasetError:
    return DatasetError(f"field `{field_name}`: {problem}. Fix: {fix}")


def validate(ds: Dataset) -> None:
    f = ds.features
    if f.ndim != 3:
        raise _fail("features", f"expected 3 dimensions [T, H, F], got shape {f.shape}", "stack one [H, F] matrix per interval")
    T, H, F = f.shape
    if T == 0 or H == 0 or F == 0:
        raise _fail("features", f"empty shape {f.shape}", "provide at least one interval, host and feature")
    if not np.issubdtype(f.dtype, np.floating):
        raise _fail("features", f"dtype {f.dtype} is not floating point", "store float32 values")
    bad = ~np.isfinite(f)
    if bad.any():
        t, h, k = np.argwhere(bad)[0]
        name = ds.feature_names[k] if k < len(ds.feature_names) else k
        raise _fail(
            "features",
            f"{int(bad.sum())} non-finite values (NaN/inf), first at interval {t}, host {h}, feature {name!r}",
            "fill gaps before saving (e.g. carry the last value forward) or drop those intervals",
        )
    if len(ds.feature_names) != F:
        raise _fail("feature_names", f"{len(ds.feature_names)} names for {F} features", "give exactly one name per feature column")
    if len(set(ds.feature_names)) != F:
        raise _fail("feature_names", "names repeat", "make every feature name unique")
    if ds.labels.shape != (T, H):
        raise _fail("labels", f"shape {ds.labels.shape}, expected (T, H) = {(T, H)}", "give one label per interval and host")
    if not np.issubdtype(ds.labels.dtype, np.integer):
        raise _fail("labels", f"dtype {ds.labels.dtype} is not integer", "store class indices as int8")
    K = len(ds.class_names)
    if K < 2 or ds.class_names[0] != "none":
        raise _fail("class_names", f"{ds.class_names!r}", "start with 'none' (no fault) followed by at least one fault class")
    if ds.labels.size and (ds.labels.min() < 0 or ds.labels.max() >= K):
        bad_val = int(ds.labels.max() if ds.labels.max() >= K else ds.labels.min())
        raise _fail(
            "labels",
            f"value {bad_val} is not a class index 0..{K - 1} ({', '.join(ds.class_names)})",
            "map every label to an index into class_names, or add the missing class name",
        )
    m = ds.migrations
    if m.ndim != 2 or m.shape[1] != 3:
        raise _fail("migrations", f"shape {m.shape}, expected [M, 3]", "store rows of (interval, source host, target host)")
    if m.size:
        if m[:, 0].min() < 0 or m[:, 0].max() >= T:
            raise _fail(
                "migrations",
                f"interval out of range 0..{T - 1} (found {int(m[:, 0].min())}..{int(m[:, 0].max())})",
                "number intervals from 0 like the rows of features",
            )
        for col, what in ((1, "source"), (2, "target")):
            wrong = (m[:, col] < 0) | (m[:, col] >= H)
            if wrong.any():
                row = m[np.argmax(wrong)]
                raise _fail(
                    "migrations",
                    f"{what} host {int(row[col])} does not exist (hosts are 0..{H - 1}); row {row.tolist()}",
                    "use host indices into host_names",
                )
    if len(ds.host_names) != H:
        raise _fail("host_names", f"{len(ds.host_names)} names for {H} hosts", "give one name per host column")
    if not (isinstance(ds.interval_seconds, (int, float)) and ds.interval_seconds > 0):
        raise _fail("interval_seconds", f"{ds.interval_seconds!r}", "give the interval length in seconds, > 0")
    if ds.labelled is not None and (ds.labelled.shape != (T,) or ds.labelled.dtype != bool):
        raise _fail("labelled", f"shape {ds.labelled.shape}, dtype {ds.labelled.dtype}", f"store one bool per interval, shape ({T},)")
    if ds.labelled is not None and not ds.labelled.any():
        raise _fail("labelled", "no interval is labelled", "mark the intervals whose labels are known True")


def load(path: str | Path) -> Dataset:
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: no such file")
    try:
        npz = np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile) as err:
        raise DatasetError(f"{path}: not a .npz file ({err}). Fix: write it with numpy.savez_compressed") from err
    with npz:
        missing = [k for k in REQUIRED if k not in npz.files]
        if missing:
            raise DatasetError(
                f"{path}: missing required field(s) {', '.join(missing)}. Fix: see docs/dataset-format.md "
                f"(required: {', '.join(REQUIRED)}; optional: {', '.join(OPTIONAL)})"
            )
        try:
            meta = json.loads(str(npz["metadata"])) if "metadata" in npz.files else {}
        except json.JSONDecodeError as err:
            raise _fail("metadata", f"not JSON ({err})", "store a JSON object as a 0-d string array") from err
        if not isinstance(meta, dict):
            raise _fail("metadata", "not a JSON object", "store a JSON object")
        version = meta.get("format_version", FORMAT_VERSION)
        if version != FORMAT_VERSION:
            raise _fail("metadata.format_version", f"{version}", f"this ftmoe reads version {FORMAT_VERSION}")
        features = npz["features"]
        H = features.shape[1] if features.ndim == 3 else 0
        migrations = npz["migrations"] if "migrations" in npz.files else np.zeros((0, 3), dtype=np.int32)
        labelled = npz["labelled"] if "labelled" in npz.files else None
        ds = Dataset(
            features=features,
            feature_names=[str(x) for x in npz["feature_names"].tolist()],
            labels=npz["labels"],
            class_names=[str(x) for x in npz["class_names"].tolist()],
            migrations=migrations.reshape(-1, 3) if migrations.size == 0 else migrations,
            host_names=[str(x) for x in npz["host_names"].tolist()] if "host_names" in npz.files else [f"host-{h}" for h in range(H)],
            interval_seconds=float(npz["interval_seconds"]),
            metadata=meta,
            labelled=None if labelled is None or labelled.all() else labelled.astype(bool),
        )
    validate(ds)
    return ds
