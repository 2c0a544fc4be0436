"""How `make image` installs the dependencies (deploy/image/layers.py) and how it refuses
to start a build the disk cannot hold (deploy/image/build.sh). The layer split is checked
on a plan made here; the disk check runs the real script with buildah, so this module is
part of `make test-image`."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.image


def load_layers(tmp_path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("image_layers", ROOT / "deploy/image/layers.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.PLAN = tmp_path / "plan.json"
    module.PYPROJECT = tmp_path / "pyproject.toml"
    return module


def test_the_plan_splits_cuda_libraries_from_torch_and_covers_it_all(tmp_path: Path) -> None:
    layers = load_layers(tmp_path)
    names = {"torch": "2.15.0", "nvidia-cublas": "13.4.1.3", "cuda-toolkit": "13.2.2", "triton": "3.7.0", "sympy": "1.14.0"}
    report = {"install": [{"metadata": {"name": n, "version": v}} for n, v in names.items()]}
    layers.PLAN.write_text(json.dumps(report))
    cuda, torch = layers.planned("cuda"), layers.planned("torch")
    assert cuda == ["nvidia-cublas==13.4.1.3", "cuda-toolkit==13.2.2"]
    assert torch == ["torch==2.15.0", "triton==3.7.0", "sympy==1.14.0"]
    assert sorted(cuda + torch) == sorted(f"{n}=={v}" for n, v in names.items())


def test_the_torch_requirement_is_read_from_pyproject(tmp_path: Path) -> None:
    layers = load_layers(tmp_path)
    layers.PYPROJECT.write_text('[project]\ndependencies = ["numpy>=1.26,<3", "torch>=2.4,<2.16", "torch-geometric>=2.6"]\n')
    assert layers.torch_requirement() == "torch>=2.4,<2.16"


def test_a_wrong_step_prints_the_usage() -> None:
    out = subprocess.run([sys.executable, str(ROOT / "deploy/image/layers.py"), "install", "gpu"], capture_output=True, text=True)
    assert out.returncode == 1
    assert "usage: layers.py plan | install cuda|torch|rest" in out.stderr


def test_build_stops_before_a_dependencies_stage_the_disk_cannot_hold() -> None:
    # another torch index makes another dependencies' stage key, so the check runs; the
    # base image that `make image` made is reused and nothing is downloaded
    env = {**os.environ, "FTMOE_IMAGE_DISK_GIB": "1000000", "FTMOE_TORCH_INDEX_URL": "http://index.invalid/simple"}
    out = subprocess.run(
        [str(ROOT / "deploy/image/build.sh"), "localhost/ftmoe-operator:disk-check"], capture_output=True, text=True, env=env, timeout=300
    )
    assert out.returncode == 1, out.stdout + out.stderr
    needed = re.search(r"needs about (\d+) GiB free under", out.stderr)
    assert needed is not None and int(needed[1]) >= 1000000, out.stderr  # twice that under vfs
    assert "FTMOE_IMAGE_DISK_GIB" in out.stderr
    assert "building the dependencies' stage" not in out.stdout
