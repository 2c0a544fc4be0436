"""Install the operator's dependencies into the image's venv in three layers: CUDA
libraries, then torch with the rest of what it needs, then everything else.

Run by the Dockerfile's `deps` stage, one `RUN` per step, with the venv's Python:

    layers.py plan            resolve pyproject.toml's torch requirement once (pip --dry-run)
    layers.py install cuda    the nvidia-*/cuda-* wheels of the plan (none from a CPU index)
    layers.py install torch   the rest of torch's plan
    layers.py install rest    pyproject.toml's dependencies; torch's are met already

Why layers: PyPI's torch brings about 3 GB of CUDA libraries. As one 6 GB layer it needs
about 18 GB of free disk to commit (the layer, its working copy and two compressed copies
in flight); as three it needs about half, and a registry serves the layers in parallel.
The plan is resolved once so that every layer installs exact versions (`--no-deps`) and
the last step has nothing of torch's left to change. Standard library only: this runs
before anything is installed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import tomllib

HERE = Path(__file__).resolve().parent
PYPROJECT = HERE / "pyproject.toml"
PLAN = HERE / "plan.json"
PIP = [sys.executable, "-m", "pip"]
CUDA_PREFIXES = ("nvidia-", "cuda-")


def dependencies() -> list[str]:
    deps: list[str] = tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
    return deps


def torch_requirement() -> str:
    return next(d for d in dependencies() if d.replace(" ", "").startswith("torch>"))


def index_args() -> list[str]:
    # Empty: PyPI (the CUDA build on Linux x86-64). Otherwise torch and what it needs come
    # from that index only, as `pip install --index-url` would take them.
    url = os.environ.get("TORCH_INDEX_URL", "")
    return ["--index-url", url] if url else []


def pip(*args: str) -> None:
    # pip prints its own error; a traceback from here would only bury it
    done = subprocess.run([*PIP, *args])
    if done.returncode:
        sys.exit(f"error: pip {' '.join(args)} failed (exit {done.returncode}); pip's message is above")


def plan() -> None:
    pip("install", "--quiet", "--no-cache-dir", "--upgrade", "pip>=24.2,<27")
    pip("install", "--quiet", "--dry-run", "--report", str(PLAN), *index_args(), torch_requirement())
    cuda = planned("cuda")
    print(f"torch's plan: {len(cuda) + len(planned('torch'))} packages, {len(cuda)} of them CUDA libraries")


def planned(layer: str) -> list[str]:
    """The plan's exact pins for layer ``cuda`` (nvidia-*, cuda-*) or ``torch`` (the rest)."""
    pins = [f"{p['metadata']['name']}=={p['metadata']['version']}" for p in json.loads(PLAN.read_text())["install"]]
    cuda = [p for p in pins if p.lower().startswith(CUDA_PREFIXES)]
    return cuda if layer == "cuda" else [p for p in pins if p not in cuda]


def install(layer: str) -> None:
    if layer == "rest":
        pip("install", "--no-cache-dir", *dependencies())
        return
    pins = planned(layer)
    print(f"layer {layer}: {len(pins)} packages")
    if pins:
        pip("install", "--no-cache-dir", "--no-deps", *index_args(), *pins)


def main(argv: list[str]) -> None:
    match argv:
        case ["plan"]:
            plan()
        case ["install", ("cuda" | "torch" | "rest") as layer]:
            install(layer)
        case _:
            sys.exit(f"usage: {Path(__file__).name} plan | install cuda|torch|rest")


if __name__ == "__main__":
    main(sys.argv[1:])
