"""Bitbrains GWA-T-12 "Rnd" VM traces, read straight from the published zip.

Each CSV holds one VM, one sample every 300 s, columns separated by ``;\\t``. The paper's
container pool is the VMs whose CPU usage at the 10th sample lies in [500, 3000] MHz.
"""

from __future__ import annotations

import io
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

TRACE_INTERVAL_SECONDS = 300
# Columns of the trace, in order.
COLUMNS = (
    "timestamp_ms",
    "cpu_cores",
    "cpu_capacity_mhz",
    "cpu_usage_mhz",
    "cpu_usage_percent",
    "memory_capacity_kb",
    "memory_usage_kb",
    "disk_read_kbps",
    "disk_write_kbps",
    "network_rx_kbps",
    "network_tx_kbps",
)
# What a container replays, in this order in ``TracePool.usage``.
USAGE = ("cpu_mhz", "memory_bytes", "disk_read_bps", "disk_write_bps", "net_rx_bps", "net_tx_bps")
_SOURCE_COLUMNS = (3, 6, 7, 8, 9, 10)
_TO_UNITS = np.array([1.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0])

POOL_SAMPLE = 9  # the 10th sample, zero-based
POOL_CPU_MHZ = (500.0, 3000.0)


def default_trace_path() -> Path:
    """FTMOE_BITBRAINS, else the copy in the checkout's shared/ folder."""
    explicit = os.environ.get("FTMOE_BITBRAINS")
    if explicit:
        return Path(explicit)
    here = Path(__file__).resolve()
    for parent in here.parents:
        candidate = parent / "shared" / "data" / "bitbrains" / "rnd-2013-7.zip"
        if candidate.is_file():
            return candidate
    return Path("shared/data/bitbrains/rnd-2013-7.zip")


class TraceError(ValueError):
    """The trace archive is missing or not in the Bitbrains layout."""


@dataclass(frozen=True)
class TracePool:
    """Usage series of the pool's VMs, padded to one array.

    ``usage`` is float64 [V, T_max, 6] in the units of ``USAGE``; ``lengths`` [V] gives
    each VM's real length (replay wraps around at that length); ``names`` the CSV names.
    """

    usage: np.ndarray
    lengths: np.ndarray
    names: tuple[str, ...]
    source: str

    def __len__(self) -> int:
        return len(self.names)

    def at(self, vm: np.ndarray, step: np.ndarray) -> np.ndarray:
        """Usage of VMs ``vm`` at their own ``step`` (wrapping), shape [len(vm), 6]."""
        return self.usage[vm, step % self.lengths[vm]]


def parse_csv(raw: bytes, name: str) -> np.ndarray:
    text = raw.replace(b";\t", b" ").replace(b";", b" ")
    try:
        arr = np.loadtxt(io.BytesIO(text), skiprows=1, ndmin=2)
    except ValueError as err:
        raise TraceError(f"{name}: not a Bitbrains CSV ({err})") from err
    if arr.shape[1] != len(COLUMNS):
        raise TraceError(f"{name}: expected {len(COLUMNS)} columns, found {arr.shape[1]}")
    return arr


def load_pool(path: Path | None = None, cpu_range: tuple[float, float] = POOL_CPU_MHZ, min_length: int = 100) -> TracePool:
    path = Path(path) if path else default_trace_path()
    if not path.is_file():
        raise TraceError(
            f"Bitbrains trace archive not found at {path}. Set FTMOE_BITBRAINS to the path of "
            "rnd-2013-7.zip (GWA-T-12 Bitbrains 'Rnd', July 2013) or pass --traces."
        )
    series: list[np.ndarray] = []
    names: list[str] = []
    with zipfile.ZipFile(path) as archive:
        for name in sorted(n for n in archive.namelist() if n.endswith(".csv")):
            # The pool filter needs only the 10th sample; read the head first.
            with archive.open(name) as fh:
                head = b"".join(fh.readline() for _ in range(POOL_SAMPLE + 2))
            first = parse_csv(head, name)
            if len(first) <= POOL_SAMPLE or not cpu_range[0] <= first[POOL_SAMPLE, 3] <= cpu_range[1]:
                continue
            arr = parse_csv(archive.read(name), name)
            if len(arr) < min_length:
                continue
            usage = np.nan_to_num(arr[:, _SOURCE_COLUMNS], nan=0.0, posinf=0.0, neginf=0.0)
            series.append(np.clip(usage, 0.0, None) * _TO_UNITS)
            names.append(name)
    if not series:
        raise TraceError(f"{path}: no VM has CPU usage in {cpu_range} MHz at sample {POOL_SAMPLE + 1}")
    lengths = np.array([len(s) for s in series])
    padded = np.zeros((len(series), lengths.max(), len(USAGE)))
    for i, s in enumerate(series):
        padded[i, : len(s)] = s
    return TracePool(padded, lengths, tuple(names), str(path))
