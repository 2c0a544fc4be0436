"""The layout contract of BRIEF section 2: one `ftmoe` namespace, stdlib `operator` intact."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = {"ftmoe": "ftmoe", "ftmoe.operator": "operator", "ftmoe.predictor": "predictor", "ftmoe.simulator": "simulator"}
PROBE = (
    "import json, operator, importlib, sys\n"
    "mods = {m: importlib.import_module(m).__file__ for m in sys.argv[1:]}\n"
    "print(json.dumps({'operator': operator.__file__, 'has_itemgetter': hasattr(operator, 'itemgetter'), 'mods': mods}))\n"
)


def declared_packages() -> list[str]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]


def package_folders() -> list[str]:
    """Every folder with an __init__.py, named as the package it installs as."""
    found = []
    for package, folder in FOLDERS.items():
        for init in sorted((ROOT / folder).rglob("__init__.py")):
            rel = init.parent.relative_to(ROOT / folder)
            found.append(".".join([package, *rel.parts]) if rel.parts else package)
    return found


# Folders that hold only data (no __init__.py) but ship in the wheel.
DATA_PACKAGES = {"ftmoe.cluster.stages", "ftmoe.predictor.models.default"}


def test_every_package_folder_is_declared() -> None:
    assert sorted(package_folders()) == sorted(set(declared_packages()) - DATA_PACKAGES)


def test_package_dir_maps_the_top_level_folders() -> None:
    mapping = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    assert mapping == FOLDERS


def run_probe(cwd: Path, extra_env: dict[str, str] | None = None, python: str = sys.executable) -> dict:
    import json

    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(extra_env or {})
    names = [n for n in declared_packages() if n not in DATA_PACKAGES]
    out = subprocess.run([python, "-c", PROBE, *names], cwd=cwd, env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


@pytest.mark.parametrize("where", ["repo-root", "elsewhere"])
def test_editable_install_keeps_stdlib_operator(where: str, tmp_path: Path) -> None:
    # From the repository root, `operator/` sits on sys.path[0]; the stdlib must still win.
    info = run_probe(ROOT if where == "repo-root" else tmp_path)
    for name in DATA_PACKAGES:
        info["mods"].pop(name, None)
    assert info["has_itemgetter"]
    assert Path(info["operator"]).parent == Path(os.__file__).parent
    assert Path(info["mods"]["ftmoe.operator"]) == ROOT / "operator" / "__init__.py"
    assert Path(info["mods"]["ftmoe.predictor"]) == ROOT / "predictor" / "__init__.py"


def test_checkout_on_sys_path_does_not_shadow_stdlib_operator() -> None:
    # -S: no site start-up, so nothing has imported `operator` before `-c` runs and the
    # repository root ('' = cwd) is first on sys.path, ahead of the standard library.
    code = (
        "import operator, _operator, collections; "
        "assert operator.eq is _operator.eq; "
        "assert operator.itemgetter(1)([0, 7]) == 7; "
        "assert not hasattr(operator, '__path__'); "
        "print(collections.namedtuple('P', 'x')(1))"
    )
    out = subprocess.run([sys.executable, "-S", "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "P(x=1)"


def test_in_process_imports() -> None:
    import operator

    assert operator.itemgetter(1)([0, 7]) == 7
    for name in set(declared_packages()) - DATA_PACKAGES:
        assert importlib.import_module(name).__name__ == name


@pytest.mark.slow
def test_wheel_install_imports_every_package(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(wheels), str(ROOT)],
        check=True,
        capture_output=True,
        text=True,
    )
    (wheel,) = wheels.glob("ftmoe_operator-*.whl")
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel)],
        check=True,
        capture_output=True,
        text=True,
    )
    # The wheel's copy comes first on sys.path, ahead of the editable finder of this venv.
    info = run_probe(tmp_path, {"PYTHONPATH": str(site)})
    assert info["has_itemgetter"]
    assert Path(info["operator"]).parent == Path(os.__file__).parent
    for name, path in info["mods"].items():
        assert Path(path).is_relative_to(site), (name, path)
    assert (site / "ftmoe" / "operator" / "__init__.py").is_file()
    assert (site / "ftmoe" / "cluster" / "stages" / "node-heartbeat.yaml").is_file()
    if (ROOT / "predictor" / "models" / "default" / "config.json").is_file():
        assert (site / "ftmoe" / "predictor" / "models" / "default" / "model.safetensors").is_file()
    assert not (site / "operator").exists(), "the wheel must not install a top-level `operator` package"


def test_console_script_runs() -> None:
    ftmoe = Path(sys.executable).parent / "ftmoe"
    out = subprocess.run([str(ftmoe), "--help"], capture_output=True, text=True, check=True).stdout
    assert "cluster" in out
