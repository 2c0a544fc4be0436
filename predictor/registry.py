"""Model kinds by name: FT-MoE and the baselines, for `--model-type`, and loading a model
folder of any kind. It sits above ``base`` (which knows no model type), so the two never
import each other."""

from __future__ import annotations

import json
from pathlib import Path

from ftmoe.predictor.base import CONFIG_FILE, WEIGHTS_FILE, Predictor
from ftmoe.predictor.calibration import Calibrator
from ftmoe.predictor.errors import ModelFileError
from ftmoe.predictor.host_baseline import HostBaseline


def kinds() -> dict[str, type[Predictor]]:
    from ftmoe.predictor.baselines.cmodlb import CMODLB
    from ftmoe.predictor.baselines.gbt import GradientBoostedTrees
    from ftmoe.predictor.baselines.markov import MarkovDetector
    from ftmoe.predictor.baselines.mlp import SeedMLP
    from ftmoe.predictor.baselines.pregan import PreGANPlusPredictor, PreGANPredictor
    from ftmoe.predictor.baselines.rules import DFTM, ECLB, PCFT, PromQLRules
    from ftmoe.predictor.ftmoe_predictor import FTMoEPredictor

    classes: list[type[Predictor]] = [
        FTMoEPredictor,
        SeedMLP,
        DFTM,
        PCFT,
        ECLB,
        PromQLRules,
        GradientBoostedTrees,
        CMODLB,
        PreGANPredictor,
        PreGANPlusPredictor,
        MarkovDetector,
    ]
    return {c.kind: c for c in classes}


def predictor_class(kind: str) -> type[Predictor]:
    known = kinds()
    if kind not in known:
        raise ValueError(f"unknown model type {kind!r}; choose one of: {', '.join(sorted(known))}")
    return known[kind]


def load(folder: str | Path) -> Predictor:
    folder = Path(folder)
    path = folder / CONFIG_FILE
    if not path.is_file():
        raise ModelFileError(f"{path}: no such file; a model folder holds {CONFIG_FILE} (and {WEIGHTS_FILE})")
    try:
        doc = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ModelFileError(f"{path}: not valid JSON ({err})") from err
    for key in ("kind", "feature_names", "class_names", "window", "lead", "threshold", "state"):
        if key not in doc:
            raise ModelFileError(f"{path}: missing key {key!r}")
    cls = predictor_class(doc["kind"])
    model = cls()
    model.feature_names = list(doc["feature_names"])
    model.class_names = list(doc["class_names"])
    model.window = int(doc["window"])
    model.lead = int(doc["lead"])
    model.horizon = int(doc.get("horizon", 1))  # files before horizons: the next interval only
    model.threshold = float(doc["threshold"])
    try:
        model.calibrator = Calibrator.from_dict(doc.get("calibration"))
    except TypeError as err:
        raise ModelFileError(f"{path}: bad 'calibration' entry ({err})") from err
    model.info = dict(doc.get("info", {}))
    if doc.get("host_baseline") is not None:  # files before host baselines have none
        try:
            model.host_baseline = HostBaseline.from_dict(doc["host_baseline"])
        except (KeyError, TypeError, ValueError) as err:
            raise ModelFileError(f"{path}: bad 'host_baseline' entry ({err})") from err
    from safetensors import SafetensorError

    try:
        model.load_state(doc["state"], folder)
    except (KeyError, ValueError, RuntimeError, OSError, SafetensorError) as err:
        raise ModelFileError(f"{folder}: cannot load the {doc['kind']} model ({type(err).__name__}: {err})") from err
    return model
