"""The import rules between the rooms (BRIEF section 2), read from
the source, so a forbidden import fails here before it ships:

- ``contract`` (features, dataset format, oracle) imports no other room;
- ``predictor`` imports neither kopf nor kubernetes, nor the operator or the simulator;
- ``operator`` imports no simulator module;
- ``simulator`` does not import the operator;
- ``predictor.base`` does not import ``predictor.registry`` (the registry sits above it);
- ``operator.api`` (the API types the CRDs are generated from) imports nothing of the project
  but the duration parser, so every other module may import it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ROOMS = {
    "contract": ROOT / "ftmoe" / "contract",
    "predictor": ROOT / "predictor",
    "operator": ROOT / "operator",
    "simulator": ROOT / "simulator",
    "api": ROOT / "operator" / "api",
}


def imports(folder: Path) -> dict[str, set[str]]:
    """Module file (relative) -> every module it imports, at any depth (lazy imports count)."""
    out: dict[str, set[str]] = {}
    for path in folder.rglob("*.py"):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module)
        out[str(path.relative_to(ROOT))] = names
    return out


def offenders(room: str, forbidden: tuple[str, ...]) -> list[str]:
    return sorted(
        f"{path}: {name}"
        for path, names in imports(ROOMS[room]).items()
        for name in names
        if any(name == f or name.startswith(f + ".") for f in forbidden)
    )


@pytest.mark.parametrize(
    ("room", "forbidden"),
    [
        ("contract", ("ftmoe.predictor", "ftmoe.operator", "ftmoe.simulator", "ftmoe.cluster", "torch", "kopf", "kubernetes")),
        ("predictor", ("kopf", "kubernetes", "ftmoe.operator", "ftmoe.simulator", "ftmoe.cluster")),
        ("operator", ("ftmoe.simulator",)),
        ("simulator", ("ftmoe.operator",)),
    ],
)
def test_rooms_import_only_what_they_may(room: str, forbidden: tuple[str, ...]) -> None:
    assert offenders(room, forbidden) == []


def test_the_walk_sees_imports() -> None:
    """The rules above would pass on a walk that found nothing."""
    found = imports(ROOMS["operator"])
    assert "ftmoe.contract.features" in found["operator/node_metrics.py"]
    assert "ftmoe.predictor.base" in imports(ROOMS["predictor"])["predictor/registry.py"]


def test_base_does_not_import_the_registry() -> None:
    assert "ftmoe.predictor.registry" not in imports(ROOMS["predictor"])["predictor/base.py"]


def test_the_api_types_import_only_themselves_and_durations() -> None:
    allowed = ("ftmoe.operator.api", "ftmoe.operator.durations")
    found = sorted(
        f"{path}: {name}"
        for path, names in imports(ROOMS["api"]).items()
        for name in names
        if name.startswith("ftmoe") and not any(name == a or name.startswith(a + ".") for a in allowed)
    )
    assert found == []
    assert "ftmoe.operator.api.policy_types" in imports(ROOMS["api"])["operator/api/crds.py"]
