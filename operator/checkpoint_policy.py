"""How often a training job should checkpoint, given predicted node risk: pure functions.

Notation: C is the blocking cost of one checkpoint (seconds of stalled training), M a
mean time between failures, lambda = 1/M a failure rate, r and p the predictor's recall
and precision, h the prediction horizon.

- Young (1974):  T = sqrt(2 C M).
- Daly (2006):   T = sqrt(2 C M) [1 + (1/3) sqrt(C / 2M) + (1/9) (C / 2M)] - C   for C < 2M,
                 T = M otherwise.
- A node whose fault probability within h is p fails at rate -ln(1 - p) / h; a job fails
  when any of its nodes does, so its rate is the sum over its nodes (plus a fleet baseline
  per node for what no model sees).
- RiskAware: faults the predictor catches in time are handled by a checkpoint on the
  alarm, so between alarms the periodic interval only has to cover the others, at rate
  (1 - r_eff) lambda: T = Daly(C, 1 / ((1 - r_eff) lambda)). An alarm helps only if the
  checkpoint it triggers is durable before the fault: with lead times exponential of mean
  L, r_eff = r exp(-(C + persist) / L). While an alarm is up the job's rate is the
  predicted one discounted by the precision, and the interval follows it,
  T = Daly(C, 1 / (p lambda)) (the optimal frequency follows sqrt(rate)), when the work it
  expects to save over the horizon h, p risk (h - T) / 2, exceeds what the extra
  checkpoints cost, (h / T) C; otherwise the periodic rule applies at that discounted rate
  (at the baseline when precision < 0.5, so a poor predictor never makes a job checkpoint
  more than Daly would). On an alarm of precision p, checkpoint now when the work
  at risk since the last checkpoint exceeds C / p (the expected cost of checkpointing for
  an alarm that may be false).
- Linear: the second seed's lambda_t = alpha P(fault_t) + beta I_t checkpoints per hour
  (P the job's highest node risk, I_t its load), kept as a baseline.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ftmoe.operator.api.policy_types import CHECKPOINT_POLICIES as POLICIES
from ftmoe.operator.api.policy_types import CheckpointPolicyName as Policy
from ftmoe.operator.api.policy_types import CheckpointSpec  # the knobs, declared once with the policy's fields

__all__ = ["POLICIES", "CheckpointSpec", "JobView", "Policy", "decide"]


def young(cost: float, mtbf: float) -> float:
    return math.sqrt(2 * cost * mtbf)


def daly(cost: float, mtbf: float) -> float:
    if cost >= 2 * mtbf:
        return mtbf
    x = cost / (2 * mtbf)
    return math.sqrt(2 * cost * mtbf) * (1 + math.sqrt(x) / 3 + x / 9) - cost


def rate_from_probability(p: float, horizon: float) -> float:
    """Failure rate (per second) implied by probability p of failing within horizon seconds."""
    p = min(max(p, 0.0), 1 - 1e-9)
    return -math.log1p(-p) / horizon


def job_rate(node_risks: list[float], horizon: float, baseline_per_node: float) -> float:
    """A job fails when any of its nodes fails: the sum of its nodes' rates."""
    return sum(rate_from_probability(p, horizon) + baseline_per_node for p in node_risks)


@dataclass(frozen=True)
class JobView:
    """What the operator knows about one training workload (pods grouped by owner)."""

    node_risks: tuple[float, ...]
    horizon: float
    load: float = 1.0  # I_t, 0..1, for Linear
    alarm: bool = False  # some node of the job is at or above the policy's cordon threshold
    work_at_risk: float = 0.0  # seconds of training since the last checkpoint (estimated)
    cost: float | None = None  # per-pod override of C


@dataclass(frozen=True)
class CheckpointDecision:
    interval: float
    checkpoint_now: bool
    reason: str


def periodic_interval(spec: CheckpointSpec, job: JobView) -> tuple[float, str]:
    cost = job.cost if job.cost is not None else spec.cost
    nodes = max(len(job.node_risks), 1)
    baseline = nodes / spec.node_mtbf
    if spec.policy == "Fixed":
        return spec.clamp(spec.fixed_interval), "Fixed"
    if spec.policy in ("Young", "Daly"):
        fn = young if spec.policy == "Young" else daly
        return spec.clamp(fn(cost, 1 / baseline)), f"{spec.policy}: C={cost:.0f}s, job MTBF {1 / baseline / 3600:.1f}h (fleet baseline)"
    if spec.policy == "Linear":
        p = max(job.node_risks, default=0.0)
        per_hour = spec.alpha * p + spec.beta * job.load
        interval = 3600.0 / per_hour if per_hour > 0 else spec.max_interval
        return spec.clamp(interval), f"Linear: {spec.alpha:g}*P({p:.2f}) + {spec.beta:g}*I({job.load:.2f}) = {per_hour:.2f}/h"
    lam = job_rate(list(job.node_risks), job.horizon, 1 / spec.node_mtbf) if job.node_risks else baseline
    if job.alarm:
        # Only a share `precision` of alarms are real: the predicted rate, discounted by it.
        alarm_rate = spec.precision * (lam - baseline) + baseline
        short = spec.clamp(daly(cost, 1 / alarm_rate))
        # Checkpointing that often over the horizon costs (h / T) C; it saves, if the fault
        # comes (probability precision x risk), about (h - T) / 2 of work. Else stay calm.
        p_fault = spec.precision * max(job.node_risks, default=0.0)
        if p_fault * (job.horizon - short) / 2 > job.horizon / short * cost:
            return short, f"RiskAware: alarm, predicted job rate {lam * 3600:.3f}/h x precision {spec.precision:.2f}, C={cost:.0f}s"
        # Not worth it at the alarm's own pace: the periodic rule below covers the job, at the
        # discounted rate while alarms are more often right than wrong, else at the baseline
        # (a mostly-false alarm must not make a job checkpoint more; the sweep's low-precision
        # corner lost up to 0.1 point to Daly without this).
        lam = alarm_rate if spec.precision >= 0.5 else baseline
    r_eff = effective_recall(spec, cost)
    missed = max((1 - r_eff) * lam, 1e-12)
    return spec.clamp(daly(cost, 1 / missed)), (
        f"RiskAware: job rate {lam * 3600:.3f}/h, missed or too late for the predictor "
        f"(recall {spec.recall:.2f}, in time {r_eff:.2f}) {missed * 3600:.4f}/h, C={cost:.0f}s"
    )


def effective_recall(spec: CheckpointSpec, cost: float) -> float:
    """Share of faults alarmed early enough for a checkpoint to be durable first
    (lead times taken as exponential with the predictor's mean lead)."""
    return spec.recall * math.exp(-(cost + spec.persist) / max(spec.lead, 1e-9))


def decide(spec: CheckpointSpec, job: JobView) -> CheckpointDecision:
    interval, why = periodic_interval(spec, job)
    now = False
    if spec.policy == "RiskAware" and job.alarm:
        cost = job.cost if job.cost is not None else spec.cost
        threshold = cost / max(spec.precision, 1e-6)
        now = job.work_at_risk > threshold
        why += f"; alarm: {job.work_at_risk:.0f}s of work at risk {'>' if now else '<='} C/p = {threshold:.0f}s" + (
            " -> checkpoint now" if now else ""
        )
    return CheckpointDecision(interval, now, why)


def damped(spec: CheckpointSpec, current: float | None, proposed: float, last_change: float | None, now: float) -> float:
    """Keep the current interval unless the proposal moves it by more than min_change and
    the cooldown has passed; a job told too often to change learns to ignore it."""
    if current is None:
        return proposed
    if abs(proposed - current) <= spec.min_change * current:
        return current
    if last_change is not None and now - last_change < spec.cooldown:
        return current
    return proposed


def work_at_risk(now: float, anchor: float, interval: float) -> float:
    """Seconds of training since the last checkpoint, for a job that checkpoints every
    ``interval`` seconds from ``anchor`` (its start, or its last known checkpoint)."""
    elapsed = max(0.0, now - anchor)
    return elapsed % interval if interval > 0 else elapsed
