"""Simulator configuration: hosts, workload and the fault model, with the paper's defaults."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

CLASS_NAMES: tuple[str, ...] = ("none", "cpu", "memory", "disk")
NONE, CPU, MEMORY, DISK = range(4)

# The FT-MoE paper's label shares (115,010 / 8,001 / 22,771 / 14,218 host-intervals).
PAPER_SHARES = {"none": 0.719, "cpu": 0.050, "memory": 0.142, "disk": 0.089}

GIB = 1024**3


@dataclass(frozen=True)
class HostType:
    name: str
    cores: int
    mhz_per_core: float
    memory_bytes: float
    disk_bytes: float
    disk_bandwidth_bps: float  # sequential bytes/s at 100 % busy
    network_bandwidth_bps: float
    idle_watts: float  # power model: idle + (max - idle) * cpu utilisation
    max_watts: float


SMALL_HOST = HostType("sim-4g", 2, 2600.0, 4 * GIB, 50 * GIB, 200e6, 125e6, 60.0, 120.0)
LARGE_HOST = HostType("sim-8g", 4, 2600.0, 8 * GIB, 100 * GIB, 400e6, 125e6, 90.0, 210.0)


@dataclass(frozen=True)
class Cause:
    """One root cause of a fault and the shape of its precursor."""

    name: str
    fault_type: int
    weight: float  # share among the causes of its fault type
    precursor: tuple[int, int]  # precursor length range in intervals (inclusive)
    noise: float  # std of the jitter on the precursor's progress


@dataclass(frozen=True)
class FaultConfig:
    """The fault process. Hazards are derived from target shares (see faults.hazards)."""

    target_shares: dict[str, float] = field(default_factory=lambda: dict(PAPER_SHARES))
    # Mean fault duration per type, in intervals (cpu, memory, disk).
    duration: tuple[float, float, float] = (4.0, 8.0, 10.0)
    # Share of faults of each type that strike without a precursor.
    sudden_share: tuple[float, float, float] = (0.2, 0.2, 0.2)
    refractory: int = 2  # healthy intervals after a fault ends
    causes: tuple[Cause, ...] = (
        Cause("cpu-runaway", CPU, 0.6, (3, 8), 0.08),
        Cause("cpu-thermal-throttling", CPU, 0.4, (4, 10), 0.05),
        Cause("memory-leak", MEMORY, 1.0, (5, 15), 0.05),
        Cause("disk-filling", DISK, 0.4, (8, 20), 0.03),
        Cause("disk-io-saturation", DISK, 0.3, (3, 8), 0.08),
        Cause("disk-failing-device", DISK, 0.3, (6, 16), 0.10),
    )


def drifted_faults() -> FaultConfig:
    """A different fault pattern for online-learning experiments. Most memory faults are
    now swap storms, a signature the default regime never shows: major page faults and
    disk reads climb for 8-18 intervals while the used-memory gauge stays moderate, so a
    model trained on the default regime alarms long before the fault. Thermal throttling
    and failing disks dominate their types. Sudden shares, precursor lengths and noise stay
    as in the default regime: a model that learns the new pattern can do as well as before."""
    return FaultConfig(
        target_shares={"none": 0.68, "cpu": 0.08, "memory": 0.14, "disk": 0.10},
        duration=(5.0, 6.0, 8.0),
        causes=(
            Cause("cpu-runaway", CPU, 0.3, (3, 8), 0.08),
            Cause("cpu-thermal-throttling", CPU, 0.7, (4, 10), 0.05),
            Cause("memory-leak", MEMORY, 0.2, (5, 15), 0.05),
            Cause("memory-swap-storm", MEMORY, 0.8, (8, 18), 0.08),
            Cause("disk-filling", DISK, 0.2, (8, 20), 0.03),
            Cause("disk-io-saturation", DISK, 0.2, (3, 8), 0.08),
            Cause("disk-failing-device", DISK, 0.6, (6, 16), 0.10),
        ),
    )


@dataclass(frozen=True)
class SimConfig:
    hosts: int = 16
    intervals: int = 10_000
    seed: int = 0
    interval_seconds: int = 300  # one Bitbrains sample per interval
    # Containers arriving per interval ~ Normal(mean, std), per 16 hosts (scaled with H).
    arrivals_mean: float = 2.5
    arrivals_std: float = 1.0
    lifetime_mean: float = 30.0  # intervals, geometric
    initial_containers_per_host: float = 4.0
    # Bitbrains VMs are larger than the paper's edge containers; usage is scaled down.
    cpu_scale: float = 1.0
    memory_scale: float = 0.25
    io_scale: float = 1.0
    base_memory_fraction: tuple[float, float] = (0.10, 0.20)
    base_disk_fraction: tuple[float, float] = (0.30, 0.60)
    # Move containers off a host only when demand exceeds its capacity (contention), as
    # Kubernetes does not rebalance running pods on load. A lower threshold makes the
    # scheduler drain every host whose precursor raises its load, which hides the value
    # of any prediction in the closed loop (bench/qos.py).
    overload_threshold: float = 1.0
    max_migrations_per_host: int = 2
    response_time_ms: float = 100.0
    sla_factor: float = 5.0  # SLA violated when response time exceeds this x the base
    metric_noise: float = 0.02
    faults: FaultConfig = field(default_factory=FaultConfig)
    drift: FaultConfig | None = None
    drift_at: int | None = None  # interval at which `drift` replaces `faults`

    def host_types(self) -> list[HostType]:
        """The first half of the hosts are small, the rest large, as in the paper."""
        return [SMALL_HOST if i < self.hosts // 2 else LARGE_HOST for i in range(self.hosts)]

    def with_(self, **changes: Any) -> SimConfig:
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
