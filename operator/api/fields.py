"""Field types shared by the API models, each with its wire schema beside its Python type.

A ``Duration`` is a Go-style string on the wire ("30s", "1h30m") and seconds (float) in
Python (code may pass seconds; a spec read from the wire must spell the string); an
``IntOrPercent`` is a count or "10%". ``Wire`` carries the OpenAPI schema the
CRD generator emits for a type whose Python form differs from its wire form.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, PlainSerializer, ValidationInfo
from pydantic.alias_generators import to_camel

from ftmoe.operator.durations import format_duration, parse_duration

DURATION_PATTERN = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"
MAX_DURATION_HOURS = 87600  # ten years: longer is a typo, and would overflow date arithmetic
PERCENT_CEL = "type(self) == int ? self >= 0 : self.matches('^(100|[1-9]?[0-9])%$')"


@dataclass(frozen=True, eq=False)  # hashed by identity: typing hashes Annotated metadata
class Wire:
    """The OpenAPI schema of a field on the wire, used verbatim by the CRD generator."""

    schema: dict[str, Any] = field(default_factory=dict)


class ApiModel(BaseModel):
    """Strict (no "false" read as True, no float read as int, no NaN), camelCase on the wire,
    unknown fields refused: the standalone parser is as strict as the API server."""

    model_config = ConfigDict(
        strict=True, extra="forbid", frozen=True, alias_generator=to_camel, populate_by_name=True, allow_inf_nan=False
    )


def _seconds(value: Any, info: ValidationInfo) -> Any:
    if (info.context or {}).get("wire") and not isinstance(value, str):
        raise ValueError(f"expected a duration string such as 30s, 5m or 1h30m, got {value!r}")
    if isinstance(value, str):
        try:
            seconds = parse_duration(value)
        except ValueError:
            raise ValueError(f"{value!r} is not a duration; write it like 30s, 5m or 1h30m") from None
        if seconds > MAX_DURATION_HOURS * 3600:
            raise ValueError(f"{value!r} is more than {MAX_DURATION_HOURS}h (ten years); write a shorter duration")
        return seconds
    return value  # a float from Python code is checked by the float validator


Duration = Annotated[
    float,
    BeforeValidator(_seconds),
    PlainSerializer(format_duration, return_type=str, when_used="json"),
    Wire(
        {
            "type": "string",
            "pattern": DURATION_PATTERN,
            "x-kubernetes-validations": [
                {
                    "rule": f"duration(self) <= duration('{MAX_DURATION_HOURS}h')",
                    "message": f"must be at most {MAX_DURATION_HOURS}h (ten years)",
                }
            ],
        }
    ),
]


def _count_or_percent(value: int | str) -> int | str:
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"{value} is negative; give a count >= 0 or a percent such as 10%")
        return value
    text = value.strip()
    if not (text.endswith("%") and text[:-1].isdigit() and 0 <= int(text[:-1]) <= 100):
        raise ValueError(f"{value!r} is neither a count nor a percent from 0% to 100%; write 2 or 10%")
    return text


IntOrPercent = Annotated[int | str, AfterValidator(_count_or_percent), Wire({"x-kubernetes-int-or-string": True})]


def cel(rule: str, message: str, field_path: str | None = None) -> dict[str, Any]:
    """One x-kubernetes-validations entry; the model beside it checks the same in Python."""
    out: dict[str, Any] = {"rule": rule, "message": message}
    if field_path:
        out["fieldPath"] = field_path
    return out


class StatusModel(BaseModel):
    """What the operator writes: camelCase on the wire, unknown fields refused (a test
    validates the writer's output, so a field the schema lacks is found before the API
    server prunes it)."""

    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=True, protected_namespaces=())


Timestamp = Annotated[str, Wire({"type": "string", "format": "date-time"})]

Unstructured = Annotated[dict[str, Any], Wire({"type": "object", "x-kubernetes-preserve-unknown-fields": True})]
