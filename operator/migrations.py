"""Pod migrations between nodes, from the pod watch: the edges of the host graph.

A pod of one owner leaving node A and a pod of the same owner starting on node B within
the same interval is an edge A -> B (a rescheduled replica, an eviction the operator made,
a rollout that moved). Departures and arrivals are kept for a bounded time only; after a
restart the first windows simply have fewer edges, which the model handles (isolated
hosts keep their own features).
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Move:
    owner: str
    node: str
    time: float


class MigrationTracker:
    def __init__(self, keep_seconds: float = 3600.0):
        self.keep = keep_seconds
        self.departures: deque[Move] = deque()
        self.arrivals: deque[Move] = deque()
        self.placed: dict[str, tuple[str, str]] = {}  # pod uid -> (owner, node)
        self.lock = threading.Lock()

    def observe(self, event_type: str | None, pod: dict[str, Any], now: float) -> None:
        """Feed one watch event (ADDED, MODIFIED, DELETED or None for the initial listing)."""
        meta = pod.get("metadata", {})
        uid, node = meta.get("uid"), pod.get("spec", {}).get("nodeName")
        owner = owner_key(meta)
        if not uid or not owner:
            return
        with self.lock:
            gone = event_type == "DELETED" or bool(meta.get("deletionTimestamp"))
            if gone:
                placed = self.placed.pop(uid, None)
                if placed is not None:
                    self.departures.append(Move(placed[0], placed[1], now))
            elif node and uid not in self.placed:
                self.placed[uid] = (owner, node)
                if event_type is not None:  # pods already running at start-up did not just arrive
                    self.arrivals.append(Move(owner, node, now))
            self._trim(now)

    def record_eviction(self, owner: str, node: str, now: float) -> None:
        with self.lock:
            self.departures.append(Move(owner, node, now))

    def _trim(self, now: float) -> None:
        for q in (self.departures, self.arrivals):
            while q and now - q[0].time > self.keep:
                q.popleft()

    def arrivals_per_node(self, now: float, within: float) -> dict[str, int]:
        """Pods that landed on each node in the last ``within`` seconds."""
        with self.lock:
            recent = [m.node for m in self.arrivals if now - m.time <= within]
        counts: dict[str, int] = {}
        for n in recent:
            counts[n] = counts.get(n, 0) + 1
        return counts

    def edges(self, nodes: list[str], times: np.ndarray, step: float) -> np.ndarray:
        """[M, 3] (window index, source, target) for the intervals ending at ``times``.

        Interval w covers (times[w] - step, times[w]]; within it each owner's departures are
        paired with its arrivals in time order."""
        index = {n: i for i, n in enumerate(nodes)}
        rows: list[tuple[int, int, int]] = []
        with self.lock:
            departures, arrivals = list(self.departures), list(self.arrivals)
        for w, end in enumerate(times):
            start = end - step
            out: dict[str, list[Move]] = {}
            for m in departures:
                if start < m.time <= end:
                    out.setdefault(m.owner, []).append(m)
            for owner, leaving in out.items():
                landing = [m for m in arrivals if m.owner == owner and start < m.time <= end]
                for a, b in zip(sorted(leaving, key=lambda m: m.time), sorted(landing, key=lambda m: m.time)):
                    if a.node != b.node and a.node in index and b.node in index:
                        rows.append((w, index[a.node], index[b.node]))
        return np.array(rows, dtype=np.int64).reshape(-1, 3)


def owner_key(meta: dict[str, Any]) -> str | None:
    """namespace/kind/name of the controlling owner; None for pods without one."""
    for ref in meta.get("ownerReferences") or []:
        if ref.get("controller"):
            return f"{meta.get('namespace', '')}/{ref.get('kind')}/{ref.get('name')}"
    return None
