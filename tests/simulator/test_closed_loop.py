"""Remediation policies act on the simulator; QoS shows what they achieve."""

from __future__ import annotations

import numpy as np

from ftmoe.simulator.config import SimConfig
from ftmoe.simulator.engine import F, Action, Observation, Simulator
from ftmoe.simulator.traces import TracePool


def run(pool: TracePool, policy=None, intervals: int = 800) -> dict:  # type: ignore[no-untyped-def]
    sim = Simulator(SimConfig(hosts=16, intervals=intervals, seed=3), pool)
    for _ in sim.run(policy=policy):
        pass
    return sim.qos.summary()


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


def test_policies_change_qos(pool: TracePool) -> None:
    baseline = run(pool)

    def memory_watch(obs: Observation) -> list[Action]:
        risky = obs.features[:, F["memory_used_fraction"]] > 0.9
        acts = [Action("drain", host=int(h)) for h in np.flatnonzero(risky & ~obs.cordoned)]
        acts += [Action("uncordon", host=int(h)) for h in np.flatnonzero(~risky & obs.cordoned)]
        return acts

    protected = run(pool, memory_watch)
    assert baseline["containers_hit_by_faults"] > 0
    # Moving work off hosts whose memory is filling spares containers from OOM faults.
    assert protected["containers_hit_by_faults"] < baseline["containers_hit_by_faults"]
    assert protected["migrations"] > baseline["migrations"]
    for key in ("sla_violations", "avg_response_time_ms", "energy_kwh", "avg_cpu_utilisation", "avg_ram_utilisation"):
        assert baseline[key] > 0 and protected[key] > 0
