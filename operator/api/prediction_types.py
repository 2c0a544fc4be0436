"""NodeFaultPrediction (ftmoe.io/v1alpha1): one per node and policy, written by the operator.

``operator/predictions.py`` builds the object; these classes are its schema.
"""

from __future__ import annotations

from pydantic import Field

from ftmoe.operator.api.fields import StatusModel, Timestamp


class PredictionSpec(StatusModel):
    """Which node and policy this prediction is for."""

    node: str = Field(description="The node's name.")
    policy: str = Field(description="The FaultTolerancePolicy's name.")


class Driver(StatusModel):
    feature: str | None = Field(None, description="Feature name.")
    value: float | None = Field(None, description="Raw value in the last interval.")
    zscore: float | None = Field(None, description="Distance from the model's training mean, in standard deviations.")


class CostCandidate(StatusModel):
    action: str | None = Field(None, description="annotate, cordon, evict or checkpoint-then-evict.")
    resource_cost: float | None = Field(None, description="What acting costs, in pod-seconds.")
    fault_impact: float | None = Field(None, description="Risk times what is lost if the node fails, in pod-seconds.")
    total: float | None = Field(None, description="The weighted sum L.")


class CostChoice(StatusModel):
    chosen: str | None = Field(None, description="The cheapest action.")
    candidates: list[CostCandidate] | None = Field(
        None, description=("Each candidate action with L = resourceWeight x resourceCost + impactWeight x faultImpact.")
    )


class PredictionStatus(StatusModel):
    """The latest prediction and decision."""

    risk: float | None = Field(
        None,
        description=(
            "Probability of a fault within the horizon, 0 to 1; absent when the node had no complete metric window or its "
            "prediction was withheld."
        ),
    )
    fault_type: str | None = Field(None, description="The most likely fault type if a fault happens.")
    scores: dict[str, float] | None = Field(None, description="Probability of each fault type, given a fault.")
    drivers: list[Driver] | None = Field(
        None, description=("The features furthest from their training mean in the last interval (largest |z|).")
    )
    drivers_summary: str | None = Field(None, description="The strongest driver and how many more, for kubectl -o wide.")
    risk_shown: str | None = Field(
        None, description=("The risk with two decimals, as the printer column and the node's ftmoe.io/risk label show it.")
    )
    type_shown: str | None = Field(
        None, description=('faultType when the risk is at or above thresholds.annotate, else "-" (a healthy node has no likely fault).')
    )
    window_end: Timestamp | None = Field(None, description="End of the metric window the prediction used.")
    horizon: str | None = Field(None, description="The policy's horizon when this was written.")
    model_version: str | None = Field(None, description="Version of the model that made the prediction.")
    action: str | None = Field(
        None,
        description=(
            "none, annotate, cordon, drain, uncordon, would-cordon, would-drain, would-uncordon, blocked, stale (no complete "
            "metric window for this node; when no node has one, the prediction keeps what it showed and the policy's "
            "MetricsAvailable condition says why), or withheld (a complete window the model is not trusted on: an "
            "impossible value, one far outside the training data, or a NaN risk; reason says which)."
        ),
    )
    reason: str | None = Field(None, description="Why the action (or why not).")
    risk_since: Timestamp | None = Field(None, description="Since when the risk has been at or above the cordon threshold.")
    cost: CostChoice | None = Field(
        None, description=("With spec.costModel, the action chosen and every candidate's cost terms (pod-seconds).")
    )
