"""From a v1 dataset to model inputs: normalisation, windows, schedule graphs, splits.

A sample ending at interval t holds features [t-W+1 .. t] of every host, the schedule
graph of the migrations in those intervals, and its target: the class of the first
faulty interval in [t + lead, t + lead + horizon - 1] (0 when there is none). With lead 1
and horizon h the question is the operator's: "does a fault start, or is one under way,
within the next h intervals?" (horizon 1 = the next interval only).

Splits (``blocked_split``): the test set is the latest part of the labelled data; the
validation set is several blocks spread over the whole training period, with block
edges placed where no host is inside a labelled fault and sized by faults as well as
by time, so that it holds enough positives to choose a threshold and a calibration on.
No window or target crosses a split edge, a recording break or an unlabelled interval.
"""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

from ftmoe.contract.dataset import Dataset
from ftmoe.predictor.config import NORMALISATIONS


@dataclass
class Normaliser:
    """Per-feature log1p (for heavy-tailed, non-negative features) then z-score, or with
    ``quantile`` a rank-Gaussian map: each feature through its empirical CDF on the fitting
    intervals, then the standard normal's inverse CDF.

    Fitted on the training intervals only and saved with the model. Why the quantile map:
    a tree sees only the order of a feature's values, while a z-score of a heavy-tailed
    metric (latency, bytes) puts a few outliers at z in the hundreds and squeezes the rest
    near 0, which a network learns little from. Values beyond the fitted range map to the
    range's ends (z within +-3.3), as they fall past a tree's last threshold.

    ``ple`` (piecewise-linear encoding, Gorishniy et al., "On Embeddings for Numerical
    Features in Tabular Deep Learning", 2022) turns each feature into ``PLE_BINS`` codes, one
    a bin between consecutive quantiles of the fitting intervals: 1 for a bin the value has
    passed, 0 for one it has not reached, the fraction in between. [..., F] -> [..., F * bins].
    A network then weighs each stretch of a feature's range on its own, as a tree splits
    there, instead of one slope for the whole range."""

    log: list[bool]
    mean: list[float]
    std: list[float]
    method: str = "zscore"  # zscore | quantile | both | ple; model files written before it are zscore
    # quantile map (quantile, both), per feature: increasing values and their CDF levels
    knots: list[list[float]] | None = None
    levels: list[list[float]] | None = None

    def __post_init__(self) -> None:
        # also what a model file's "normalisation" reads through: a bad one is named, never guessed
        if self.method not in NORMALISATIONS:
            raise ValueError(f"normalisation {self.method!r} is not one of {', '.join(NORMALISATIONS)}")
        if self.method != "zscore" and (self.knots is None or self.levels is None):
            raise ValueError(f"normalisation {self.method!r} needs its quantile map (knots and levels)")

    @classmethod
    def fit(cls, features: np.ndarray, method: str = "zscore") -> Normaliser:
        flat = features.reshape(-1, features.shape[-1]).astype(np.float64)
        log = [bool(col.min() >= 0 and np.percentile(col, 99) > 10) for col in flat.T]
        x = np.where(log, np.log1p(np.clip(flat, 0, None)), flat)
        std = x.std(axis=0)
        maps = [quantile_knots(col) for col in flat.T] if method != "zscore" else None
        return cls(
            log,
            x.mean(axis=0).tolist(),
            np.where(std > 1e-8, std, 1.0).tolist(),
            method,
            [k for k, _ in maps] if maps else None,
            [lv for _, lv in maps] if maps else None,
        )

    def __call__(self, features: np.ndarray) -> np.ndarray:
        """The model's inputs: [..., F] -> [..., F] (zscore, quantile), [..., 2F] (both) or
        [..., F * PLE_BINS] (ple, a feature's codes side by side)."""
        if self.method == "ple":
            return self._piecewise_linear(features)
        if self.method == "quantile":
            return self._quantile(features)
        if self.method == "both":
            return np.concatenate([self._quantile(features), self.zscore(features)], axis=-1)
        return self.zscore(features)

    def zscore(self, features: np.ndarray) -> np.ndarray:
        """How many training standard deviations from the training mean (after log1p for
        heavy tails), whatever the model's inputs are: what the operator shows as drivers
        and checks for out-of-distribution inputs."""
        log = np.array(self.log)
        x = np.where(log, np.log1p(np.clip(features, 0, None)), features)
        return ((x - np.array(self.mean)) / np.array(self.std)).astype(np.float32)

    def _quantile(self, features: np.ndarray) -> np.ndarray:
        from scipy.special import ndtri  # scipy comes with scikit-learn, a dependency

        assert self.knots is not None and self.levels is not None
        return ndtri(self._cdf(features)).astype(np.float32)

    def _cdf(self, features: np.ndarray) -> np.ndarray:
        assert self.knots is not None and self.levels is not None
        out = np.empty(features.shape, dtype=np.float64)
        for f, (k, lv) in enumerate(zip(self.knots, self.levels, strict=True)):
            out[..., f] = np.interp(features[..., f], k, lv)
        return out

    def _piecewise_linear(self, features: np.ndarray) -> np.ndarray:
        # The CDF's levels are the quantiles, so bins of equal width in it hold equal shares of the fitting data.
        u = (self._cdf(features) - QUANTILE_TAIL) / (1 - 2 * QUANTILE_TAIL)
        codes = np.clip(u[..., None] * PLE_BINS - np.arange(PLE_BINS), 0.0, 1.0)  # [..., F, bins]
        return codes.reshape(*features.shape[:-1], features.shape[-1] * PLE_BINS).astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


PLE_BINS = 8  # codes per feature under ``ple``: 8 bins of 12.5 % of the fitting data each
QUANTILE_LEVELS = 201  # knots per feature: a 0.5 % resolution of the CDF
QUANTILE_TAIL = 5e-4  # the CDF kept within [tail, 1 - tail]: z within +-3.29


def quantile_knots(col: np.ndarray) -> tuple[list[float], list[float]]:
    """A feature's quantile map: increasing knots and their CDF levels. Tied values (a
    metric at 0 most of the time) become one knot at the middle of the levels they span,
    so equal inputs map to one value and the map stays a function."""
    probs = np.linspace(QUANTILE_TAIL, 1 - QUANTILE_TAIL, QUANTILE_LEVELS)
    raw = np.quantile(col[np.isfinite(col)], probs) if np.isfinite(col).any() else np.zeros_like(probs)
    knots, first = np.unique(raw, return_index=True)
    last = np.append(first[1:], len(raw)) - 1
    levels = (probs[first] + probs[last]) / 2
    if len(knots) == 1:  # a constant feature: map it to 0
        knots, levels = np.array([knots[0] - 1, knots[0] + 1]), np.array([0.5, 0.5])
    return knots.tolist(), levels.tolist()


def migration_edges(migrations: np.ndarray, T: int) -> list[np.ndarray]:
    """Per interval, the unique (source, target) pairs of its migrations, [E_t, 2]."""
    out: list[np.ndarray] = [np.zeros((0, 2), dtype=np.int64) for _ in range(T)]
    if len(migrations) == 0:
        return out
    m = migrations[migrations[:, 1] != migrations[:, 2]]
    order = np.argsort(m[:, 0], kind="stable")
    m = m[order]
    bounds = np.searchsorted(m[:, 0], np.arange(T + 1))
    for t in range(T):
        pairs = m[bounds[t] : bounds[t + 1], 1:]
        if len(pairs):
            out[t] = np.unique(pairs, axis=0).astype(np.int64)
    return out


def targets(labels: np.ndarray, lead: int = 1, horizon: int = 1) -> np.ndarray:
    """[T, H]: row t is the class of the first faulty interval in [t+lead, t+lead+horizon-1],
    0 if none. Rows whose span runs past the data are filled from what exists (never
    scored: ``window_ends`` keeps only ends whose whole span lies in the data)."""
    T, H = labels.shape
    out = np.zeros((T, H), dtype=np.int64)
    filled = np.zeros((T, H), dtype=bool)
    for k in range(lead, lead + horizon):
        if k >= T:
            break
        future = labels[k:].astype(np.int64)  # future[t] = labels[t + k]
        take = (~filled[: T - k]) & (future > 0)
        out[: T - k][take] = future[take]
        filled[: T - k] |= take
    return out


class WindowSet(torch.utils.data.Dataset):
    """Samples ending at the intervals in ``ends``; targets over [end+lead, end+lead+horizon-1]."""

    def __init__(
        self,
        features: np.ndarray,
        labels: np.ndarray,
        edges: list[np.ndarray],
        ends: np.ndarray,
        window: int,
        lead: int = 1,
        horizon: int = 1,
    ):
        self.x = torch.from_numpy(features)  # normalised [T, H, F]
        self.y = torch.from_numpy(targets(labels, lead, horizon))
        self.edges = edges
        self.ends = ends
        self.window = window
        self.lead = lead

    def __len__(self) -> int:
        return len(self.ends)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
        t = int(self.ends[i])
        x = self.x[t - self.window + 1 : t + 1]
        e = [self.edges[s] for s in range(t - self.window + 1, t + 1)]
        pairs = np.unique(np.concatenate(e), axis=0) if any(len(a) for a in e) else np.zeros((0, 2), dtype=np.int64)
        return x, self.y[t], torch.from_numpy(pairs.T.copy()), t


def collate(
    batch: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]],
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    xs, ys, es, ts = zip(*batch)
    H = xs[0].shape[1]
    edge_index = torch.cat([e + b * H for b, e in enumerate(es)], dim=1) if es else torch.zeros((2, 0), dtype=torch.long)
    return torch.stack(xs), torch.stack(ys), edge_index.long(), torch.tensor(ts)


@dataclass
class Splits:
    train: np.ndarray  # window end intervals
    val: np.ndarray
    test: np.ndarray
    # which split each interval belongs to (0 train, 1 validation, 2 test, -1 none) and
    # what the protocol did, for the model card and the tests
    assignment: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int8))
    notes: list[str] = field(default_factory=list)
    val_positives: int = 0
    val_share: float = 0.0


TRAIN, VAL, TEST = 0, 1, 2
MIN_VAL_POSITIVES = 30


def fitting_end(splits: Splits, T: int) -> int:
    """Input statistics (the normaliser, host baselines) come from every interval before the
    test split (features only, no labels: validation blocks inside the training period and
    unlabelled history count)."""
    test = np.flatnonzero(splits.assignment == TEST) if len(splits.assignment) else np.zeros(0, dtype=int)
    if len(test):
        return int(test[0])
    return int(max(splits.train.max(initial=0), splits.val.max(initial=0))) + 1 if len(splits.train) else T


def window_ends(
    assignment: np.ndarray,
    which: int,
    window: int,
    lead: int = 1,
    horizon: int = 1,
    breaks: list[int] | None = None,
    labelled: np.ndarray | None = None,
) -> np.ndarray:
    """Ends t whose window [t-W+1, t] and targets [t+lead, t+lead+horizon-1] all lie in
    intervals of split ``which``, with no recording break inside and every target labelled.

    Features of unlabelled intervals may be read (history), their labels never: a window
    may start in an unlabelled stretch, its targets may not lie in one."""
    T = len(assignment)
    lo, hi = window - 1, T - lead - horizon + 1
    if hi <= lo:
        return np.zeros(0, dtype=np.int64)
    inside = assignment == which
    segment = np.zeros(T, dtype=np.int64)
    for b in breaks or []:
        segment[b:] += 1
    lab = np.ones(T, dtype=bool) if labelled is None else labelled.astype(bool)
    t = np.arange(lo, hi)
    span_lo, span_hi = t - window + 1, t + lead + horizon - 1
    # a run-length trick: an interval range is all-in iff the prefix count of bad ones does not grow
    bad_split = np.concatenate([[0], np.cumsum(~inside)])
    bad_label = np.concatenate([[0], np.cumsum(~lab)])
    ok_t = bad_split[span_hi + 1] - bad_split[span_lo] == 0
    ok_t &= segment[span_lo] == segment[span_hi]
    ok_t &= bad_label[span_hi + 1] - bad_label[t + lead] == 0
    return t[ok_t].astype(np.int64)


def _quiet_edge(busy: np.ndarray, at: int, lo: int, hi: int) -> int:
    """The edge nearest ``at`` in [lo, hi] that cuts no fault in two (a split starting at
    interval c cuts one when some host is faulty at both c - 1 and c); ``at`` if none."""
    T = len(busy)

    def quiet(c: int) -> bool:
        return c <= 0 or c >= T or not (busy[c - 1] and busy[c])

    for d in range(0, max(at - lo, hi - at) + 1):
        for c in (at - d, at + d):
            if lo <= c <= hi and quiet(c):
                return c
    return at


def _position(onsets: np.ndarray, labelled_idx: np.ndarray, share: float) -> int:
    """The interval before which ``1 - share`` of the labelled time and of the faults lie,
    whichever comes first (so the later part holds at least ``share`` of both)."""
    by_time = int(labelled_idx[min(len(labelled_idx) - 1, int(round(len(labelled_idx) * (1 - share))))])
    if len(onsets) == 0:
        return by_time
    by_fault = int(np.sort(onsets)[min(len(onsets) - 1, int(np.floor(len(onsets) * (1 - share))))])
    return min(by_time, by_fault)


def blocked_split(
    labels: np.ndarray,
    window: int,
    lead: int = 1,
    horizon: int = 1,
    test_share: float = 0.2,
    val_share: float = 0.2,
    val_blocks: int = 4,
    labelled: np.ndarray | None = None,
    breaks: list[int] | None = None,
    min_val_positives: int = MIN_VAL_POSITIVES,
    max_val_share: float = 0.5,
) -> Splits:
    """Train / validation / test window ends under the protocol of the module docstring.

    ``test_share`` 0 trains on the whole file (no test split). When the validation blocks
    hold fewer than ``min_val_positives`` positive host-windows, ``val_share`` grows by
    half again, up to ``max_val_share``; if that is still too few it is an error, because
    a threshold or a calibration chosen on fewer positives is noise."""
    T = labels.shape[0]
    lab = np.ones(T, dtype=bool) if labelled is None else labelled.astype(bool)
    if not 0 <= test_share < 1 or not 0 < val_share < 1:
        raise ValueError(f"--test-share must be in [0, 1) and --val-share in (0, 1) (got {test_share}, {val_share})")
    busy, onsets_all = _busy_onsets(labels, lab)
    labelled_idx = np.flatnonzero(lab)
    if len(labelled_idx) == 0:
        raise ValueError("no labelled interval: nothing to train or score on")
    first = int(labelled_idx[0])
    notes: list[str] = []
    test_start = _test_start(busy, onsets_all, labelled_idx, test_share)
    tgt = targets(labels, lead, horizon)
    share = val_share
    while True:
        assignment = np.full(T, TRAIN, dtype=np.int8)
        assignment[test_start:] = TEST
        # validation: `val_blocks` blocks, the k-th ending where k/val_blocks of the training
        # period's faults (and time) have passed, each holding share/val_blocks of both
        train_idx = labelled_idx[labelled_idx < test_start]
        onsets = onsets_all[onsets_all < test_start]
        for k in range(1, val_blocks + 1):
            stop_q = k / val_blocks
            start_q = stop_q - share / val_blocks
            stop = _block_edge(onsets, train_idx, stop_q, test_start)
            start = _block_edge(onsets, train_idx, start_q, test_start)
            start = _quiet_edge(busy, start, first, stop)
            stop = _quiet_edge(busy, stop, start, test_start)
            assignment[start:stop] = VAL
        val_ends = window_ends(assignment, VAL, window, lead, horizon, breaks, lab)
        positives = int((tgt[val_ends] > 0).sum()) if len(val_ends) else 0
        if positives >= min_val_positives or share >= max_val_share:
            break
        wider = min(max_val_share, share * 1.5)
        notes.append(
            f"validation held {positives} positive host-windows (< {min_val_positives}) at --val-share {share:.2f}: widened to {wider:.2f}"
        )
        share = wider
    if positives < min_val_positives:
        raise ValueError(
            f"the validation blocks hold only {positives} positive host-windows even at --val-share {share:.2f} "
            f"(at least {min_val_positives} are needed to choose a threshold and a calibration out of sample). "
            "Fix: use a dataset with more labelled faults, a longer --horizon, or --test-share 0"
        )
    splits = Splits(
        window_ends(assignment, TRAIN, window, lead, horizon, breaks, lab),
        val_ends,
        window_ends(assignment, TEST, window, lead, horizon, breaks, lab),
        assignment,
        notes,
        positives,
        share,
    )
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    return splits


def _busy_onsets(labels: np.ndarray, lab: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per interval, whether some host is inside a labelled fault; and where such runs start."""
    busy = ((labels > 0) & lab[:, None]).any(axis=1)
    return busy, np.flatnonzero(busy & ~np.concatenate([[False], busy[:-1]]))


def _test_start(busy: np.ndarray, onsets: np.ndarray, labelled_idx: np.ndarray, test_share: float) -> int:
    """Where ``blocked_split``'s test split starts (the end when ``test_share`` is 0)."""
    T = len(busy)
    if test_share <= 0 or len(labelled_idx) == 0:
        return T
    return _quiet_edge(busy, _position(onsets, labelled_idx, test_share), int(labelled_idx[0]), T - 1)


def rolling_origin(ds: Dataset, fold: int, test_share: float = 0.2) -> Dataset:
    """The file as it stood before fold ``fold``'s origin: fold 0 is the whole file, fold k
    ends where fold k-1's test split (``blocked_split`` with ``test_share``) starts.

    ``blocked_split`` on fold k then tests on the block just before fold k-1's test block and
    trains only on what came before it, so K folds score K disjoint, successive test blocks,
    each by a model that saw nothing later (a rolling-origin evaluation). One test block of
    real data holds few faults (ASD: 9); several folds say how much of a score is the split."""
    if fold < 0:
        raise ValueError(f"fold {fold}: folds count back from the latest, starting at 0")
    stop = ds.shape[0]
    for k in range(fold):
        lab = ds.labelled_mask[:stop]
        stop = _test_start(*_busy_onsets(ds.labels[:stop], lab), np.flatnonzero(lab), test_share)
        if not lab[:stop].any():
            raise ValueError(f"fold {k + 1}: no labelled interval is left before its origin; use fewer folds")
    out = ds.slice(0, stop)
    if "faults" in out.metadata:  # the simulator's records of faults after the origin are not known yet
        out.metadata["faults"] = [f for f in out.metadata["faults"] if f["onset"] < stop]
    return out


def _block_edge(onsets: np.ndarray, labelled_idx: np.ndarray, q: float, hi: int) -> int:
    """The interval by which a share q of the training period has passed, by faults where
    there are faults (time otherwise): the average of the two positions."""
    if len(labelled_idx) == 0:
        return 0
    if q <= 0:
        return int(labelled_idx[0])
    if q >= 1:
        return hi
    by_time = int(labelled_idx[min(len(labelled_idx) - 1, int(round(q * len(labelled_idx))))])
    if len(onsets) < 4:
        return by_time
    by_fault = int(np.quantile(onsets, q))
    return (by_time + by_fault) // 2


def temporal_split(T: int, window: int, lead: int = 1, test_share: float = 0.2, val_share: float = 0.1) -> Splits:
    """The simple split: the last ``test_share`` of intervals test, the ``val_share``
    before it validation (kept for the paper's benchmark and online tuning)."""
    test_start = int(round(T * (1 - test_share)))
    val_start = int(round(test_start * (1 - val_share)))
    assignment = np.full(T, TRAIN, dtype=np.int8)
    assignment[val_start:test_start] = VAL
    assignment[test_start:] = TEST
    return Splits(
        window_ends(assignment, TRAIN, window, lead),
        window_ends(assignment, VAL, window, lead),
        window_ends(assignment, TEST, window, lead),
        assignment,
    )


def all_ends(T: int, window: int, lead: int = 1, horizon: int = 1) -> np.ndarray:
    return np.arange(window - 1, T - lead - horizon + 1)


def check_features(ds: Dataset, names: list[str]) -> list[int]:
    """Column order of the model's features in ``ds``; a missing one is an error."""
    missing = [n for n in names if n not in ds.feature_names]
    if missing:
        raise ValueError(f"dataset lacks feature(s) the model was trained on: {', '.join(missing)}")
    return [ds.feature_names.index(n) for n in names]
