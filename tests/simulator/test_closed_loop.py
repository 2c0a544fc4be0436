"""Remediation policies act on the simulator; QoS shows what they achieve."""

from __future__ import annotations

import numpy as np

from ftmoe.simulator.config import SimConfig
from ftmoe.simulator.engine import Action, F, Observation, Simulator
from ftmoe.simulator.faults import FAULT, PRECURSOR
from ftmoe.simulator.policies import DrainPolicy
from ftmoe.simulator.traces import TracePool


def test_drain_empties_the_host_and_uncordon_reopens_it(pool: TracePool) -> None:
    sim = Simulator(SimConfig(hosts=8, intervals=20, seed=0), pool)
    f, _, _ = sim.step()
    host = int(np.argmax(f[:, F["running_containers"]]))
    assert f[host, F["running_containers"]] > 0
    f, _, mig = sim.step(lambda obs: [Action("drain", host=host)])
    f, _, mig = sim.step()
    assert f[host, F["running_containers"]] == 0
    assert (mig[:, 1] == host).sum() > 0 and sim.cordoned[host]
    sim.step(lambda obs: [Action("uncordon", host=host)])
    sim.step()
    assert not sim.cordoned[host]


def containers_at_onset(pool: TracePool, policy_for=None) -> tuple[float, dict]:  # type: ignore[no-untyped-def]
    """Mean containers on a host when one of its predictable faults starts."""
    sim = Simulator(SimConfig(hosts=16, intervals=600, seed=1000), pool)
    policy = policy_for(sim) if policy_for else None
    counts = []
    before = sim.faults.phase.copy()
    for f, _, _ in sim.run(policy=policy):
        started = (sim.faults.phase == FAULT) & (before != FAULT)
        for h in np.flatnonzero(started):
            if sim.faults.records[sim.faults.record[h]].precursor_start is not None:
                counts.append(f[h, F["running_containers"]])
        before = sim.faults.phase.copy()
    return float(np.mean(counts)), sim.qos.summary()


def test_foresight_moves_work_off_hosts_before_their_faults(pool: TracePool) -> None:
    """A policy that knows which hosts are in a fault's precursor (an oracle predictor)
    empties them before onset; with no policy the work is still there when it strikes."""

    def oracle(sim: Simulator) -> DrainPolicy:
        class Oracle(DrainPolicy):
            def __call__(self, obs: Observation) -> list[Action]:
                flagged = sim.faults.phase == PRECURSOR
                return self.decide(obs, flagged, flagged.astype(float))

        return Oracle(budget=1.0, healthy_for=0)

    none, base_qos = containers_at_onset(pool)
    foresight, qos = containers_at_onset(pool, oracle)
    assert none > 0.5
    assert foresight < 0.5 * none
    assert qos["migrations"] > base_qos["migrations"]
    for key in ("sla_violations", "avg_response_time_ms", "energy_kwh", "avg_cpu_utilisation", "avg_ram_utilisation"):
        assert base_qos[key] > 0 and qos[key] > 0


def test_cost_policy_acts_only_when_the_model_says_so(pool: TracePool) -> None:
    from ftmoe.simulator.policies import CostPolicy

    def scorer(features: np.ndarray, migrations: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        risk = np.zeros(features.shape[1])
        risk[[1, 2, 3]] = [0.9, 0.8, 0.7]
        return risk > 0.5, risk

    for choice, expect in (("evict", "drain"), ("cordon", "cordon"), ("annotate", None)):
        sim = Simulator(SimConfig(hosts=8, intervals=10, seed=0), pool)
        policy = CostPolicy(scorer, 2, lambda p, load, c=choice: c, sim.cores.astype(float), F["cpu_utilisation"], budget=0.25)
        taken: list[Action] = []

        def act(obs: Observation, policy: CostPolicy = policy, taken: list[Action] = taken) -> list[Action]:
            out = policy(obs)
            taken.extend(out)
            return out

        for _ in range(3):
            sim.step(act)
        kinds = [a.kind for a in taken if a.kind != "uncordon"]
        if expect is None:
            assert kinds == []
        else:
            assert kinds == [expect, expect]  # 25 % of 8 hosts: the two riskiest, hosts 1 and 2
            assert [a.host for a in taken if a.kind == expect] == [1, 2]
