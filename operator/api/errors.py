"""Pydantic's validation errors turned into one message that names each field and the fix."""

from __future__ import annotations

import types
import typing
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


class PolicyError(ValueError):
    """A policy field the operator cannot use; the message names the field and the fix."""


def parse(model: type[M], data: Any, root: str) -> M:
    """``model`` from wire data, or ``PolicyError`` naming every bad field under ``root``."""
    if not isinstance(data, dict):
        raise PolicyError(f"{root}: expected an object, got {type(data).__name__}")
    try:
        return model.model_validate(without_nulls(model, data), context={"wire": True})
    except ValidationError as err:
        raise PolicyError("; ".join(_messages(model, err, root))) from None


def without_nulls(model: type[BaseModel] | None, value: Any) -> Any:
    """The API server prunes null fields (none of ours is nullable) before defaulting; so do
    we. A null under an unknown name stays, for the unknown-field check to refuse it, as the
    API server's strict decoding does."""
    if isinstance(value, list):
        return [without_nulls(model, v) for v in value]
    if not isinstance(value, dict) or model is None:
        return value
    fields = {f.alias or n: f for n, f in model.model_fields.items()}
    return {
        k: without_nulls(_inner_model(fields[k].annotation) if k in fields else None, v)
        for k, v in value.items()
        if not (v is None and k in fields)
    }


def _messages(model: type[BaseModel], err: ValidationError, root: str) -> list[str]:
    by_path: dict[str, list[Any]] = {}
    for e in err.errors():
        by_path.setdefault(_explain(model, e, root).split(":", 1)[0], []).append(e)
    out = []
    for errors in by_path.values():
        kinds = {e["type"] for e in errors}
        if len(errors) > 1 and kinds <= {"int_type", "string_type", "int_from_float"}:  # an int-or-string field
            path = _explain(model, errors[0], root).split(":", 1)[0]
            out.append(f"{path}: expected a count or a percent such as 10%, got {errors[0]['input']!r}")
        else:
            out.append(_explain(model, errors[0], root))
    return out


def _explain(model: type[BaseModel], error: Any, root: str) -> str:
    loc = [p for p in error["loc"] if not (isinstance(p, str) and (p in _UNION_TAGS or p.startswith("function-")))]
    path = root + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc)
    message = str(error["msg"]).removeprefix("Value error, ")
    kind = error["type"]
    parent = _model_at(model, loc)
    first = message.split(" ", 1)[0]
    if parent is not None and first.rstrip(":") in _aliases(parent):  # a model rule about one of its fields
        return f"{path}.{message}"
    if kind == "bool_type":
        return f"{path}: expected true or false (a YAML boolean, not a quoted string), got {error['input']!r}"
    if kind == "missing":
        while (inner := _model_at(model, loc)) is not None:  # a required object: name the field inside it to write
            needed = next((f.alias or n for n, f in inner.model_fields.items() if f.is_required()), None)
            if needed is None:
                break
            loc, path = [*loc, needed], f"{path}.{needed}"
        described = _description(model, loc)
        return f"{path} is required" + (f": {described}" if described else "")
    if kind == "extra_forbidden":
        parent = _model_at(model, loc[:-1])
        known = sorted(_aliases(parent)) if parent else []
        return f"{path}: unknown field" + (f"; the fields here are {', '.join(known)}" if known else "")
    return f"{path}: {message}"


_UNION_TAGS = {"int", "str", "float", "bool"}


def _aliases(model: type[BaseModel]) -> set[str]:
    return {f.alias or n for n, f in model.model_fields.items()}


def _model_at(model: type[BaseModel], loc: list[Any]) -> type[BaseModel] | None:
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return None
        field = next((f for n, f in current.model_fields.items() if (f.alias or n) == part), None)
        if field is None:
            return None
        current = _inner_model(field.annotation)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _inner_model(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType, list, tuple, dict):
        for arg in typing.get_args(annotation):
            found = _inner_model(arg)
            if found is not None:
                return found
    return None


def _description(model: type[BaseModel], loc: list[Any]) -> str:
    parent = _model_at(model, loc[:-1])
    if parent is None or not loc:
        return ""
    field = next((f for n, f in parent.model_fields.items() if (f.alias or n) == loc[-1]), None)
    return (field.description or "") if field else ""
