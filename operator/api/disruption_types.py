"""The policy fields that say when and how far the operator may disrupt a node beyond a
drain: remediation hand-off (spec.remediation), maintenance and quiet windows
(spec.schedule) and nodes another controller is already working on (spec.maintenance).

Same conventions as policy_types.py: each CEL rule has its Python twin in a validator.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from typing import Annotated, Any, ClassVar, Literal

from croniter import croniter
from pydantic import Field, field_validator, model_validator

from ftmoe.operator.api.fields import ApiModel, Duration, cel

# Five cron fields of cron's characters; the numbers' ranges are checked by croniter in the
# operator (CEL has no cron), which reports a bad one as the policy's InvalidSpec condition.
CRON_PATTERN = (
    r"^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)"
    r"|[0-9*/,-]+ [0-9*/,-]+ [0-9*/,?LW-]+ [0-9A-Za-z*/,-]+ [0-9A-Za-z*/,?#L-]+)$"
)

# Taints other controllers put on a node they are working on: the Node Maintenance Operator
# (medik8s.io/drain), Karpenter's disruption, the cluster autoscaler's scale-down and the
# out-of-service taint an admin sets on a node that is shut down.
DEFAULT_MAINTENANCE_TAINTS = (
    "node.kubernetes.io/out-of-service",
    "medik8s.io/drain",
    "karpenter.sh/disrupted",
    "ToBeDeletedByClusterAutoscaler",
)


class RemediationTemplate(ApiModel):
    cel_rules: ClassVar[list[dict[str, Any]]] = [
        cel("self.kind.endsWith('Template')", "remediation template kind must end in Template, e.g. SelfNodeRemediationTemplate", ".kind")
    ]
    api_version: str = Field(
        max_length=253,
        pattern=r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?/v[0-9]+((alpha|beta)[0-9]+)?$",
        description="The template's group/version, e.g. self-node-remediation.medik8s.io/v1alpha1.",
    )
    kind: str = Field(
        max_length=63,
        pattern=r"^[A-Z][A-Za-z0-9]*$",
        description=(
            "The template's kind, ending in Template. The remediation created is of the same group/version and the kind "
            "without the suffix (SelfNodeRemediationTemplate -> SelfNodeRemediation), as Node Healthcheck does."
        ),
    )
    name: str = Field(min_length=1, max_length=253, description="The template object's name.")
    namespace: str = Field(min_length=1, max_length=63, description="The template's namespace; the remediation objects are created there.")
    timeout: Duration | None = Field(
        None,
        description=(
            "How long this remediation may run, with the node still unhealthy, before the next template is tried (the "
            "timed-out object is annotated ftmoe.io/remediation-timed-out and kept until the node recovers). On the last "
            "template, when to give up with a RemediationTimedOut event. Unset: wait for the node to recover."
        ),
    )

    @model_validator(mode="after")
    def _is_template(self) -> RemediationTemplate:
        if not self.kind.endswith("Template"):
            raise ValueError(f"kind {self.kind!r} must end in Template, e.g. SelfNodeRemediationTemplate")
        return self

    @property
    def remediation_kind(self) -> str:
        return self.kind.removesuffix("Template")

    def ref(self) -> str:
        return f"{self.remediation_kind}/{self.namespace}"


class Remediation(ApiModel):
    cel_rules: ClassVar[list[dict[str, Any]]] = [
        cel(
            "self.templates.all(t, self.templates.exists_one(u, u.apiVersion == t.apiVersion && u.kind == t.kind))",
            "remediation.templates must not repeat a kind: each remediation object is named after its node",
            ".templates",
        ),
        cel(
            "size(self.templates) == 1 || self.templates.all(t, has(t.timeout))",
            "with more than one remediation template every template needs a timeout (when to escalate to the next)",
            ".templates",
        ),
    ]
    after: Duration = Field(
        600.0,
        description=(
            "Hand a node to the first template when it stays at or above the cordon threshold this long after this policy "
            "cordoned it (and, in mode Evict, its drain has ended), or at once when the predicted fault arrives (the node "
            "turns NotReady or shows a condition from learning.labels)."
        ),
    )
    templates: list[RemediationTemplate] = Field(
        min_length=1,
        max_length=10,
        description=(
            "Remediation templates, tried in order (escalating remediation): a Medik8s SelfNodeRemediationTemplate, a "
            "Cluster API external remediation template, or any template of the form spec.template.spec. Each remediation "
            "object is named after the node, labelled ftmoe.io/policy and ftmoe.io/node, owned by this policy, and deleted "
            "when the node is healthy again. In-flight remediations count against maxUnavailable."
        ),
    )

    @model_validator(mode="after")
    def _distinct_with_timeouts(self) -> Remediation:
        kinds = [(t.api_version, t.kind) for t in self.templates]
        if len(set(kinds)) != len(kinds):
            raise ValueError("templates must not repeat a kind: each remediation object is named after its node")
        if len(self.templates) > 1 and any(t.timeout is None for t in self.templates):
            raise ValueError("with more than one template every template needs a timeout (when to escalate to the next)")
        return self


class Window(ApiModel):
    schedule: str = Field(
        max_length=100,
        pattern=CRON_PATTERN,
        description=(
            "When the window opens, in cron syntax (minute hour day-of-month month day-of-week, or @daily and the like), "
            "as Karpenter's disruption budgets write it: '0 22 * * mon-fri' opens at 22:00 on weekdays."
        ),
    )
    duration: Duration = Field(description="How long the window stays open after each opening, e.g. 8h.")
    disruptions: Literal["Allowed", "Forbidden"] = Field(
        "Allowed",
        description=(
            "Allowed: a maintenance window; when any window is Allowed, new cordons, drains and remediations happen only "
            "inside one. Forbidden: a quiet window; none happen inside it. Uncordons of recovered nodes always do."
        ),
    )
    time_zone: str = Field("UTC", max_length=64, description="The IANA time zone the schedule is read in, e.g. Europe/Berlin.")

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str) -> str:
        if not croniter.is_valid(value):
            raise ValueError(f"{value!r} is not a cron schedule; write it like '0 22 * * mon-fri' or '@daily'")
        return value

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not an IANA time zone; write it like UTC or Europe/Berlin") from None
        return value

    def open_at(self, now: float) -> bool:
        """Whether the window is open at ``now`` (epoch seconds): its last opening is less than ``duration`` ago."""
        at = dt.datetime.fromtimestamp(now, zoneinfo.ZoneInfo(self.time_zone))
        last = croniter(self.schedule, at + dt.timedelta(seconds=1)).get_prev(dt.datetime)  # an opening at `now` counts
        return (at - last).total_seconds() < self.duration


class Maintenance(ApiModel):
    taints: list[Annotated[str, Field(max_length=317)]] = Field(
        default_factory=lambda: list(DEFAULT_MAINTENANCE_TAINTS),
        max_length=50,
        description=(
            "Taint keys that mean another controller is working on the node; such a node is predicted and annotated but not "
            "cordoned, drained, uncordoned or remediated. Default: node.kubernetes.io/out-of-service, medik8s.io/drain, "
            "karpenter.sh/disrupted, ToBeDeletedByClusterAutoscaler."
        ),
    )
    labels: list[Annotated[str, Field(max_length=317)]] = Field(
        default_factory=lambda: ["ftmoe.io/maintenance"],
        max_length=50,
        description="Label keys that, present with any value, put a node in maintenance in the same way.",
    )
