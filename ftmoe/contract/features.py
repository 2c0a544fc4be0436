"""The host features: their names, units, and the PromQL that reads each from a cluster.

Feature names are the contract between the simulator, the predictor (a model stores the
names it was trained on) and the operator (each name needs a query). The default queries
read node_exporter / kubelet series carrying a ``node`` label with the Kubernetes node
name, which is what the simulator's live mode serves and what a node_exporter scrape
relabelled with the node name gives. Every query aggregates ``by (node)`` so that it
returns exactly one series per node.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# rate() extrapolates at the window's edges, so a share of time can read a little outside
# [0, 1]: 1 - rate(idle) was -0.006 on the live cluster.
FRACTION_SLACK = 0.05


@dataclass(frozen=True)
class Feature:
    name: str
    unit: str
    description: str
    promql: str  # `{node}` is replaced by a label matcher; `[{window}]` by the rate window

    @property
    def physical_range(self) -> tuple[float, float]:
        """What a real machine can report: every feature here is a count, a rate, a size,
        a time or a share, so none is negative, and a share is within [0, 1] (plus rate slack)."""
        if self.unit.startswith("fraction"):
            return (-FRACTION_SLACK, 1.0 + FRACTION_SLACK)
        return (0.0, math.inf)


FEATURES: tuple[Feature, ...] = (
    Feature(
        "cpu_utilisation",
        "fraction 0-1",
        "share of CPU time not idle",
        '1 - avg by (node) (rate(node_cpu_seconds_total{mode="idle",{node}}[{window}]))',
    ),
    Feature(
        "cpu_frequency_ratio",
        "fraction 0-1",
        "current over maximum CPU frequency (thermal throttling lowers it)",
        "avg by (node) (node_cpu_scaling_frequency_hertz{{node}}) / avg by (node) (node_cpu_scaling_frequency_max_hertz{{node}})",
    ),
    Feature(
        "load_per_core",
        "runnable tasks per core",
        "1-minute load average divided by the core count",
        'max by (node) (node_load1{{node}}) / count by (node) (node_cpu_seconds_total{mode="idle",{node}})',
    ),
    Feature(
        "memory_used_fraction",
        "fraction 0-1",
        "1 - MemAvailable / MemTotal",
        "1 - sum by (node) (node_memory_MemAvailable_bytes{{node}}) / sum by (node) (node_memory_MemTotal_bytes{{node}})",
    ),
    Feature(
        "memory_available_bytes",
        "bytes",
        "memory available to new work (MemAvailable)",
        "sum by (node) (node_memory_MemAvailable_bytes{{node}})",
    ),
    Feature(
        "memory_major_faults_per_second",
        "faults/s",
        "major page faults, the sign of swapping and memory pressure",
        "sum by (node) (rate(node_vmstat_pgmajfault{{node}}[{window}]))",
    ),
    Feature(
        "disk_used_fraction",
        "fraction 0-1",
        "used share of the root filesystem",
        '1 - sum by (node) (node_filesystem_avail_bytes{mountpoint="/",{node}}) / sum by (node) '
        '(node_filesystem_size_bytes{mountpoint="/",{node}})',
    ),
    Feature(
        "disk_io_utilisation",
        "fraction 0-1",
        "share of time the busiest disk was busy",
        "max by (node) (rate(node_disk_io_time_seconds_total{{node}}[{window}]))",
    ),
    Feature(
        "disk_io_latency_seconds",
        "seconds",
        "average time per completed disk operation",
        "sum by (node) (rate(node_disk_io_time_weighted_seconds_total{{node}}[{window}])) / clamp_min("
        "sum by (node) (rate(node_disk_reads_completed_total{{node}}[{window}]) + "
        "rate(node_disk_writes_completed_total{{node}}[{window}])), 1e-9)",
    ),
    Feature(
        "disk_read_bytes_per_second",
        "bytes/s",
        "disk read throughput",
        "sum by (node) (rate(node_disk_read_bytes_total{{node}}[{window}]))",
    ),
    Feature(
        "disk_write_bytes_per_second",
        "bytes/s",
        "disk write throughput",
        "sum by (node) (rate(node_disk_written_bytes_total{{node}}[{window}]))",
    ),
    Feature(
        "network_receive_bytes_per_second",
        "bytes/s",
        "network receive throughput",
        "sum by (node) (rate(node_network_receive_bytes_total{{node}}[{window}]))",
    ),
    Feature(
        "network_transmit_bytes_per_second",
        "bytes/s",
        "network transmit throughput",
        "sum by (node) (rate(node_network_transmit_bytes_total{{node}}[{window}]))",
    ),
    Feature("running_containers", "count", "containers running on the node", "sum by (node) (kubelet_running_containers{{node}})"),
    Feature(
        "migrations_in",
        "count per interval",
        "containers that moved onto the node in the interval",
        "sum by (node) (increase(ftmoe_node_migrations_in_total{{node}}[{window}]))",
    ),
    Feature(
        "migrations_out",
        "count per interval",
        "containers that moved off the node in the interval",
        "sum by (node) (increase(ftmoe_node_migrations_out_total{{node}}[{window}]))",
    ),
)

FEATURE_NAMES: tuple[str, ...] = tuple(f.name for f in FEATURES)
BY_NAME = {f.name: f for f in FEATURES}


def render_query(feature: Feature | str, node_matcher: str = 'node=~".+"', window: str = "1m") -> str:
    """The feature's PromQL with its node matcher and rate window filled in."""
    feat = BY_NAME[feature] if isinstance(feature, str) else feature
    # `metric{{node}}` becomes `metric{<matcher>}`; `{mode="idle",{node}}` gains the matcher.
    return feat.promql.replace("{node}", node_matcher).replace("{window}", window)
