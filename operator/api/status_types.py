"""FaultTolerancePolicy status: what the operator observed and did in its last run.

The operator writes it (operator/status.py); these classes give the CRD its status schema
and let a test check that what the writer produces is what the schema declares.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ftmoe.operator.api.fields import StatusModel, Timestamp, Unstructured


class Budget(StatusModel):
    max_unavailable: int | None = Field(None, description="maxUnavailable resolved to a node count.")
    unavailable: int | None = Field(None, description="Selected nodes NotReady or cordoned.")


class ModelInUse(StatusModel):
    kind: str | None = Field(None, description="Model kind (ftmoe or a baseline).")
    version: str | None = Field(None, description="Model version (creation time and content digest).")
    source: str | None = Field(None, description="Where the model was loaded from.")
    features: int | None = Field(None, description="Number of input features.")
    experts: int | None = Field(None, description="FT-MoE's current number of experts (online tuning adds and removes them).")
    last_tuning: Unstructured | None = Field(None, description="The last online tuning (champion / challenger) and its outcome.")
    host_baseline_nodes: int | None = Field(
        None,
        description="A model trained with host baselines (ftmoe train --host-baseline): how many of the observed nodes it "
        "measures against their own median; the others are measured against all training hosts' median.",
    )


class RecentAlarm(StatusModel):
    time: Timestamp | None = Field(None, description="When the alarm began.")
    node: str | None = Field(None, description="The node.")
    risk: float | None = Field(None, description="The risk that raised it.")
    predicted_type: str | None = Field(None, description="The fault type predicted.")
    outcome: str | None = Field(None, description="hit, false alarm or pending.")


class SelfGrading(StatusModel):
    precision: float | None = Field(None, description="Hits over decided alarms.")
    recall: float | None = Field(None, description="Faults alarmed within the horizon before onset, over faults.")
    f1: float | None = Field(None, description="Harmonic mean of precision and recall.")
    mean_lead_seconds: float | None = Field(
        None,
        description=(
            "Mean time from the first alarm to the fault's observed onset, over caught faults. The onset is the "
            "first interval the operator saw the fault's signal (a condition from learning.labels set True, an "
            "OOM kill, a kubelet eviction, NotReady), which comes after the node began to degrade."
        ),
    )
    late: int | None = Field(
        None, description=("Faults whose first alarm came after their observed onset (within the horizon); not counted as caught.")
    )
    mean_delay_seconds: float | None = Field(
        None, description=("Mean time from the observed onset to the first alarm, over faults detected late.")
    )
    alarms: int | None = Field(None, description="Alarms in the buffer.")
    hits: int | None = Field(None, description="Alarms followed by a fault within the horizon.")
    false_alarms: int | None = Field(None, description="Alarms whose horizon passed without a fault.")
    pending: int | None = Field(None, description="Alarms whose horizon is not over yet.")
    faults: int | None = Field(
        None,
        description=("Faults the cluster showed; a signal that clears and returns on the same node within the horizon is the same fault."),
    )
    caught: int | None = Field(
        None, description=("Faults with an alarm up in the horizon before their observed onset or in its interval (lead 0).")
    )
    since: Timestamp | None = Field(None, description="Start of the graded history.")
    per_type: Unstructured | None = Field(None, description="Precision and recall by fault type.")
    recent_alarms: list[RecentAlarm] | None = Field(
        None, description=("The latest alarms and their outcome (hit, false alarm, pending), newest first.")
    )


class RecentAction(StatusModel):
    time: Timestamp | None = Field(None, description="When it happened.")
    node: str | None = Field(None, description="The node.")
    action: str | None = Field(None, description="cordon, drain, uncordon, or the blocked action.")
    outcome: str | None = Field(None, description="done, dry-run (Observe), or blocked.")
    reason: str | None = Field(None, description="Machine-readable reason.")
    message: str | None = Field(None, description="Human-readable detail.")


class Condition(StatusModel):
    type: str = Field(description="Condition type.")
    status: Literal["True", "False", "Unknown"] = Field(description="True, False or Unknown.")
    reason: str | None = Field(None, description="CamelCase reason for the last transition.")
    message: str | None = Field(None, description="Human-readable detail.")
    last_transition_time: Timestamp | None = Field(None, description="When the status last changed.")
    observed_generation: int | None = Field(None, description="The spec generation this condition describes.")


class StormBreakerStatus(StatusModel):
    open: bool | None = Field(None, description="True while the breaker stops cordons, drains and remediations.")
    latched: bool | None = Field(
        None, description=("True once a latched breaker tripped: it stays open until reset (kubectl ftmoe reset POLICY).")
    )
    since: Timestamp | None = Field(None, description="When it opened.")
    reason: str | None = Field(None, description="The trip rule that opened it.")
    reset_seen: str | None = Field(None, description="The last value of annotation ftmoe.io/reset-storm-breaker acted on.")


class PolicyStatus(StatusModel):
    """What the operator observed and did in its last run."""

    observed_generation: int | None = Field(None, description="The spec generation the last run used.")
    last_run: Timestamp | None = Field(None, description="When the last interval finished.")
    observed_nodes: int | None = Field(None, description="Nodes the policy selects.")
    at_risk_nodes: int | None = Field(None, description="Selected nodes at or above the cordon threshold.")
    cordoned_nodes: int | None = Field(None, description="Nodes this policy has cordoned.")
    stale_nodes: int | None = Field(None, description="Selected nodes without a complete metric window (never acted on).")
    remediating_nodes: int | None = Field(None, description="Selected nodes handed to a remediator (spec.remediation).")
    budget: Budget | None = Field(None, description="The disruption budget as of the last run.")
    storm_breaker: StormBreakerStatus | None = Field(None, description="The storm breaker's state.")
    missing_features: list[str] | None = Field(
        None, description=("Model features with no query, or whose query returned no data for any node.")
    )
    model: ModelInUse | None = Field(None, description="The model in use.")
    self_grading: SelfGrading | None = Field(
        None,
        description=(
            "Every alarm (risk at or above the cordon threshold) scored against what the cluster showed within "
            "the horizon, over the buffer."
        ),
    )
    recent_actions: list[RecentAction] | None = Field(
        None, description=("The most recent actions and blocked actions, newest first (at most 20).")
    )
    conditions: list[Condition] | None = Field(
        None,
        description="Ready, MetricsAvailable, ModelLoaded, InputsValid, RemediationAllowed, NodesExclusive.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
