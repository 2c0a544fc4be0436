"""API models -> structural OpenAPI v3 schemas, as a CustomResourceDefinition needs them.

Pydantic's own JSON Schema uses ``$ref``, ``anyOf`` and titles, which a CRD refuses, and
writes a duration's default as seconds; this walker emits the wire form directly:
camelCase names, durations as patterned strings with Go-style defaults, CEL rules from a
model's ``cel_rules`` and a field's ``json_schema_extra``, and every default named in its
description (``kubectl explain`` prints descriptions, not defaults).
"""

from __future__ import annotations

import types
import typing
from typing import Annotated, Any, Literal

import annotated_types as at
from pydantic import BaseModel, TypeAdapter
from pydantic.fields import FieldInfo

from ftmoe.operator.api.fields import Wire

_SCALARS: dict[type, str] = {bool: "boolean", int: "integer", float: "number", str: "string"}


def object_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The schema of one model: its fields in declaration order, required ones listed."""
    out: dict[str, Any] = {"type": "object"}
    required = [f.alias or name for name, f in model.model_fields.items() if f.is_required()]
    if required:
        out["required"] = required
    out["properties"] = {f.alias or name: field_schema(f) for name, f in model.model_fields.items()}
    rules = getattr(model, "cel_rules", None)
    if rules:
        out["x-kubernetes-validations"] = [dict(r) for r in rules]
    if model.model_config.get("extra") == "allow":
        out["x-kubernetes-preserve-unknown-fields"] = True
    return out


def field_schema(f: FieldInfo) -> dict[str, Any]:
    schema = type_schema(f.annotation, list(f.metadata))
    extra = f.json_schema_extra if isinstance(f.json_schema_extra, dict) else {}
    default = wire_default(f)
    description = f.description or ""
    if default is not _NONE:
        schema["default"] = default
        if not isinstance(default, dict) and "default" not in description.lower():
            description = f"{description} Default {_spoken(default)}.".strip()
    ordered: dict[str, Any] = {"type": schema.pop("type")} if "type" in schema else {}
    if "default" in schema:
        ordered["default"] = schema.pop("default")
    ordered.update({k: v for k, v in schema.items() if k not in ("properties", "required", "x-kubernetes-validations")})
    if description:
        ordered["description"] = description
    for key in ("required", "properties"):
        if key in schema:
            ordered[key] = schema[key]
    rules = [*schema.get("x-kubernetes-validations", []), *extra.get("x-kubernetes-validations", [])]  # type: ignore[misc]
    if rules:
        ordered["x-kubernetes-validations"] = rules
    ordered.update({k: v for k, v in extra.items() if k != "x-kubernetes-validations"})
    return ordered


_NONE = object()


def wire_default(f: FieldInfo) -> Any:
    """The default as the API server should store it, or ``_NONE`` for none.

    Nested objects default to ``{}`` (the API server then applies their fields' own
    defaults), except those with CEL rules: the API server checks a default against the
    rules before it applies the nested defaults, so theirs are written out in full. Absent,
    empty lists and empty maps are left out (absent reads as empty)."""
    if f.is_required():
        return _NONE
    value = f.get_default(call_default_factory=True)
    if value is None:
        return _NONE
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", by_alias=True, exclude_none=True) if getattr(value, "cel_rules", None) else {}
    annotation: Any = Annotated[(f.annotation, *f.metadata)] if f.metadata else f.annotation
    wire = TypeAdapter(annotation).dump_python(value, mode="json", by_alias=True)
    if wire in ({}, []):
        return _NONE
    return wire


def _spoken(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def type_schema(annotation: Any, metadata: list[Any]) -> dict[str, Any]:
    if typing.get_origin(annotation) is Annotated:
        inner, *more = typing.get_args(annotation)
        return type_schema(inner, [*more, *metadata])
    wire = next((m for m in metadata if isinstance(m, Wire)), None)
    if wire is not None:
        return dict(wire.schema)
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        present = [a for a in args if a is not type(None)]
        if len(present) != 1:
            raise TypeError(f"{annotation}: a union other than Optional needs a Wire schema")
        return type_schema(present[0], metadata)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return object_schema(annotation)
    if origin is Literal:
        return {"type": "string", "enum": list(args)}
    if origin is dict:
        return {"type": "object", "additionalProperties": type_schema(args[1], [])}
    if origin in (list, tuple):
        bounds = _constraints(metadata)  # a list's min/max_length are its item counts
        counts = {k: bounds[f] for k, f in (("minItems", "minLength"), ("maxItems", "maxLength")) if f in bounds}
        return {"type": "array", **counts, "items": type_schema(args[0], [])}
    if annotation in _SCALARS:
        schema = {"type": _SCALARS[annotation], **_constraints(metadata)}
        if annotation is float:
            schema.update(_fractional_bounds(schema))
        return schema
    raise TypeError(f"no OpenAPI form for {annotation!r}")


def _fractional_bounds(schema: dict[str, Any]) -> dict[str, Any]:
    """The API server checks an integer value against ``minimum: 0.01`` as against 0 (it
    truncates the bound), so a fractional bound is also written as a CEL rule."""
    rules = []
    for key, op in (("minimum", ">="), ("maximum", "<=")):
        bound = schema.get(key)
        if bound is not None and not float(bound).is_integer():
            rules.append({"rule": f"self {op} {bound}", "message": f"must be {'at least' if op == '>=' else 'at most'} {bound}"})
    return {"x-kubernetes-validations": rules} if rules else {}


def _constraints(metadata: list[Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for m in metadata:
        if isinstance(m, FieldInfo):
            out.update(_constraints(list(m.metadata)))
        elif isinstance(m, at.Ge):
            out["minimum"] = m.ge
        elif isinstance(m, at.Le):
            out["maximum"] = m.le
        elif isinstance(m, at.MinLen):
            out["minLength"] = m.min_length
        elif isinstance(m, at.MaxLen):
            out["maxLength"] = m.max_length
        elif getattr(m, "pattern", None):
            out["pattern"] = m.pattern
    return out
