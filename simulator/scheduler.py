"""Placement and rebalancing. Pluggable: anything with ``place`` and ``rebalance`` works."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np


@dataclass
class HostView:
    """What a scheduler may see of the hosts, one entry per host."""

    cpu_capacity: np.ndarray  # MHz, after throttling
    memory_capacity: np.ndarray  # bytes
    cpu_used: np.ndarray  # MHz
    memory_used: np.ndarray  # bytes
    schedulable: np.ndarray  # bool: not cordoned, not failed

    def move(self, source: int, target: int, cpu: float, memory: float) -> None:
        """Account for one container moving, so later placements see it."""
        self.cpu_used[source] -= cpu
        self.memory_used[source] -= memory
        self.cpu_used[target] += cpu
        self.memory_used[target] += memory


class Scheduler(Protocol):
    def place(self, view: HostView, cpu: float, memory: float) -> int:
        """Host for a new container, or -1 when none fits."""

    def rebalance(
        self, view: HostView, failed: np.ndarray, containers: dict[int, np.ndarray], cpu: np.ndarray, memory: np.ndarray, limit: int
    ) -> list[tuple[int, int]]:
        """(container, target host) moves off failed or overloaded hosts."""


class LeastLoaded:
    """Place on the host whose larger of CPU and memory share stays lowest; move the largest
    containers off failed hosts and off hosts above the overload threshold."""

    def __init__(self, overload: float = 1.0):
        self.overload = overload

    @staticmethod
    def _score(view: HostView, cpu: float, memory: float) -> np.ndarray:
        load = np.maximum((view.cpu_used + cpu) / view.cpu_capacity, (view.memory_used + memory) / view.memory_capacity)
        return np.where(view.schedulable & (load <= 1.0), load, np.inf)

    def place(self, view: HostView, cpu: float, memory: float) -> int:
        score = self._score(view, cpu, memory)
        best = int(np.argmin(score))
        return best if np.isfinite(score[best]) else -1

    def rebalance(
        self, view: HostView, failed: np.ndarray, containers: dict[int, np.ndarray], cpu: np.ndarray, memory: np.ndarray, limit: int
    ) -> list[tuple[int, int]]:
        moves: list[tuple[int, int]] = []
        load = np.maximum(view.cpu_used / view.cpu_capacity, view.memory_used / view.memory_capacity)
        sources = np.flatnonzero(failed | (load > self.overload))
        for h in sources[np.argsort(-load[sources])]:
            ids = containers.get(int(h))
            if ids is None or ids.size == 0:
                continue
            # A failed host is emptied; an overloaded one sheds its largest containers.
            order = ids[np.argsort(-(cpu[ids] / view.cpu_capacity[h] + memory[ids] / view.memory_capacity[h]))]
            budget = order.size if failed[h] else limit
            for c in order[:budget]:
                target = self.place(view, float(cpu[c]), float(memory[c]))
                if target < 0 or target == h:
                    continue
                moves.append((int(c), target))
                view.move(int(h), target, cpu[c], memory[c])
        return moves
