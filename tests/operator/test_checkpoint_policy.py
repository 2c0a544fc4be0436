"""The checkpoint interval formulas against worked examples, and the RiskAware rules."""

from __future__ import annotations

import math

import pytest

from ftmoe.operator.checkpoint_policy import (
    CheckpointSpec,
    JobView,
    daly,
    damped,
    decide,
    job_rate,
    rate_from_probability,
    work_at_risk,
    young,
)

MIN = 60.0
HOUR = 3600.0


@pytest.mark.parametrize(("mtbf", "expected_minutes"), [(24 * HOUR, 117), (6 * HOUR, 57), (15 * MIN, 9.1)])
def test_daly_worked_examples(mtbf: float, expected_minutes: float) -> None:
    # Daly (2006), C = 5 minutes: 117, 57 and 9.1 minutes for M = 24 h, 6 h and 15 min.
    assert daly(5 * MIN, mtbf) / MIN == pytest.approx(expected_minutes, rel=0.01)


def test_young_and_daly_limits() -> None:
    assert young(5 * MIN, 24 * HOUR) == pytest.approx(math.sqrt(2 * 300 * 86400))
    assert daly(10 * MIN, 4 * MIN) == 4 * MIN  # C >= 2M: checkpoint every M


def test_rates_from_probabilities_add_up_over_a_jobs_nodes() -> None:
    assert rate_from_probability(1 - math.exp(-1), 600) == pytest.approx(1 / 600)
    assert rate_from_probability(0.0, 600) == 0.0
    assert job_rate([0.0, 0.0, 0.0], 600, 1e-6) == pytest.approx(3e-6)
    assert job_rate([0.5, 0.5], 600, 0.0) == pytest.approx(2 * math.log(2) / 600)


def test_risk_aware_uses_the_missed_rate() -> None:
    spec = CheckpointSpec(policy="RiskAware", cost=300, recall=0.75, min_interval=1, max_interval=1e9, node_mtbf=1e12, lead=1e12)
    p = 1 - math.exp(-600 / (8 * HOUR))  # one node, M = 8 h over a 10-minute horizon
    d = decide(spec, JobView((p,), horizon=600))
    assert d.interval == pytest.approx(daly(300, 8 * HOUR / 0.25), rel=1e-6) and not d.checkpoint_now
    # alarms that come too late to checkpoint count as misses: a 300 s lead for a 300 s checkpoint
    late = CheckpointSpec(policy="RiskAware", cost=300, recall=0.75, min_interval=1, max_interval=1e9, node_mtbf=1e12, lead=300)
    r_eff = 0.75 * math.exp(-1)
    assert decide(late, JobView((p,), 600)).interval == pytest.approx(daly(300, 8 * HOUR / (1 - r_eff)), rel=1e-6)
    # while an alarm is up the interval follows the predicted rate itself
    hot, cheap = 0.9, CheckpointSpec(cost=10, min_interval=1, node_mtbf=1e12, precision=0.8)
    expected = daly(10, 600 / (0.8 * -math.log(1 - hot)))  # discounted by the precision
    assert decide(cheap, JobView((hot,), 600, alarm=True)).interval == pytest.approx(expected, rel=1e-3)
    # ... unless the extra checkpoints cost more than they can save: a poor predictor stays calm
    poor = CheckpointSpec(cost=10, min_interval=1, node_mtbf=1e12, precision=0.05, max_interval=1e9)
    assert decide(poor, JobView((hot,), 600, alarm=True)).interval == decide(poor, JobView((), 600)).interval
    # and a good one whose alarm pace cannot pay still shortens the periodic interval as risk rises
    short = CheckpointSpec(cost=10, min_interval=60, node_mtbf=30 * 86400, precision=0.8, max_interval=7200)
    calm = decide(short, JobView((0.01, 0.01), 60)).interval
    assert decide(short, JobView((0.99, 0.01), 60, alarm=True)).interval < calm
    # recall 0: exactly Daly with the full rate
    assert decide(
        CheckpointSpec(cost=300, recall=0.0, min_interval=1, max_interval=1e9, node_mtbf=1e12), JobView((p,), 600)
    ).interval == pytest.approx(daly(300, 8 * HOUR), rel=1e-6)


def test_rising_risk_shortens_the_interval() -> None:
    spec = CheckpointSpec(cost=150, min_interval=60, max_interval=1e9)
    calm = decide(spec, JobView((0.001,) * 8, 300)).interval
    risky = decide(spec, JobView((0.001,) * 7 + (0.5,), 300)).interval
    assert risky < calm


def test_checkpoint_now_when_work_at_risk_exceeds_cost_over_precision() -> None:
    spec = CheckpointSpec(cost=100, precision=0.5)  # threshold C/p = 200 s
    assert decide(spec, JobView((0.9,), 300, alarm=True, work_at_risk=201)).checkpoint_now
    assert not decide(spec, JobView((0.9,), 300, alarm=True, work_at_risk=199)).checkpoint_now
    assert not decide(spec, JobView((0.9,), 300, alarm=False, work_at_risk=5000)).checkpoint_now
    assert not decide(CheckpointSpec(policy="Daly", cost=100), JobView((0.9,), 300, alarm=True, work_at_risk=5000)).checkpoint_now


def test_fixed_linear_and_clamps() -> None:
    assert decide(CheckpointSpec(policy="Fixed", fixed_interval=1800), JobView((0.9,), 300)).interval == 1800
    lin = CheckpointSpec(policy="Linear", alpha=6, beta=1, min_interval=1)
    assert decide(lin, JobView((0.5,), 300, load=1.0)).interval == pytest.approx(3600 / 4)
    # async: the interval never drops below the time to persist a checkpoint
    fast = CheckpointSpec(policy="Fixed", fixed_interval=10, min_interval=1, persist=120)
    assert decide(fast, JobView((), 300)).interval == 120
    assert decide(CheckpointSpec(policy="Fixed", fixed_interval=1e9, max_interval=7200), JobView((), 300)).interval == 7200


def test_damping_ignores_small_moves_and_respects_the_cooldown() -> None:
    spec = CheckpointSpec(min_change=0.2, cooldown=600)
    assert damped(spec, None, 1000, None, 0) == 1000
    assert damped(spec, 1000, 1150, None, 0) == 1000  # 15 % move: kept
    assert damped(spec, 1000, 700, 100, 500) == 1000  # in cooldown
    assert damped(spec, 1000, 700, 100, 800) == 700


def test_work_at_risk_follows_the_period() -> None:
    assert work_at_risk(1000, 0, 300) == 100
    assert work_at_risk(50, 100, 300) == 0
