"""Remediation policies for the simulator's closed loop: none, reactive, predictive.

They stand in for what an operator does to real nodes: drain (cordon and move the work
off) hosts at risk, within a budget of hosts out of service, and bring them back after
they have looked healthy for a while.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

import numpy as np

from ftmoe.simulator.engine import Action, Observation

# (features [W, H, F], migrations [M, 3] renumbered to the window) -> (alarm [H], risk [H])
Scorer = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


class DrainPolicy:
    """Drain flagged hosts, most at risk first, never more than ``budget`` of the hosts
    cordoned at once; uncordon after ``healthy_for`` intervals without a flag."""

    def __init__(self, budget: float = 0.25, healthy_for: int = 3):
        self.budget = budget
        self.healthy_for = healthy_for
        self.calm: dict[int, int] = {}

    def uncordon_calm(self, obs: Observation, flagged: np.ndarray) -> tuple[list[Action], np.ndarray]:
        """Uncordon hosts calm for ``healthy_for`` intervals; returns the actions and the
        cordon state after them."""
        actions: list[Action] = []
        cordoned = obs.cordoned.copy()
        for h in map(int, np.flatnonzero(cordoned)):
            self.calm[h] = 0 if flagged[h] else self.calm.get(h, 0) + 1
            if self.calm[h] >= self.healthy_for:
                actions.append(Action("uncordon", host=int(h)))
                cordoned[h] = False
                self.calm.pop(h)
        return actions, cordoned

    def decide(self, obs: Observation, flagged: np.ndarray, risk: np.ndarray) -> list[Action]:
        H = len(flagged)
        actions, cordoned = self.uncordon_calm(obs, flagged)
        room = int(np.floor(self.budget * H)) - int(cordoned.sum())
        for h in np.argsort(-risk):
            if room <= 0:
                break
            if flagged[h] and not cordoned[h]:
                actions.append(Action("drain", host=int(h)))
                cordoned[h] = True
                self.calm[int(h)] = 0
                room -= 1
        return actions


class ReactivePolicy(DrainPolicy):
    """Act after the fault, like draino: drain the hosts whose fault is already visible."""

    def __call__(self, obs: Observation) -> list[Action]:
        visible = obs.visible_faults if obs.visible_faults is not None else np.zeros(len(obs.cordoned), bool)
        return self.decide(obs, visible, visible.astype(float))


class PredictivePolicy(DrainPolicy):
    """Act on a predictor's alarms, from a rolling window of the features it has seen."""

    def __init__(self, scorer: Scorer, window: int, budget: float = 0.25, healthy_for: int = 3):
        super().__init__(budget, healthy_for)
        self.scorer = scorer
        self.window = window
        self.features: deque[np.ndarray] = deque(maxlen=window)
        self.migrations: deque[np.ndarray] = deque(maxlen=window)

    def __call__(self, obs: Observation) -> list[Action]:
        self.features.append(obs.features)
        self.migrations.append(obs.migrations)
        if len(self.features) < self.window:
            return []
        mig = [m.copy() for m in self.migrations]
        for i, m in enumerate(mig):
            m[:, 0] = i
        flagged, risk = self.scorer(np.stack(self.features), np.concatenate(mig) if mig else np.zeros((0, 3), np.int32))
        return self.decide(obs, flagged, risk)


class CostPolicy(PredictivePolicy):
    """The operator's cost model in the closed loop: for each alarmed host, take the
    cheapest of doing nothing, cordoning and draining (``choose`` is injected, so the
    simulator does not import the operator), within the same budget."""

    def __init__(
        self,
        scorer: Scorer,
        window: int,
        choose: Callable[[float, dict[str, float]], str],
        cores: np.ndarray,
        cpu_feature: int,
        budget: float = 0.25,
        healthy_for: int = 3,
    ):
        super().__init__(scorer, window, budget, healthy_for)
        self.choose = choose
        self.cores = cores
        self.cpu_feature = cpu_feature

    def decide(self, obs: Observation, flagged: np.ndarray, risk: np.ndarray) -> list[Action]:
        H = len(flagged)
        actions, cordoned = self.uncordon_calm(obs, flagged)
        used = obs.features[:, self.cpu_feature] * self.cores
        room = int(np.floor(self.budget * H)) - int(cordoned.sum())
        for h in np.argsort(-risk):
            if room <= 0:
                break
            if not flagged[h] or cordoned[h]:
                continue
            free_elsewhere = float(np.sum(np.where(~cordoned, self.cores - used, 0.0)) - (self.cores[h] - used[h]))
            kind = self.choose(
                float(risk[h]),
                {
                    "pods": float(obs.containers_per_host[h]),
                    "cpu_requests": float(used[h]),
                    "cores": float(self.cores[h]),
                    "free_cores_elsewhere": free_elsewhere,
                },
            )
            if kind in ("evict", "cordon"):
                actions.append(Action("drain" if kind == "evict" else "cordon", host=int(h)))
                cordoned[h] = True
                self.calm[int(h)] = 0
                room -= 1
        return actions
