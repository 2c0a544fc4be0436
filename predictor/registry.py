"""Model kinds by name: FT-MoE and the baselines, for `--model-type` and model files."""

from __future__ import annotations

from ftmoe.predictor.base import Predictor


def kinds() -> dict[str, type[Predictor]]:
    from ftmoe.predictor.baselines.cmodlb import CMODLB
    from ftmoe.predictor.baselines.gbt import GradientBoostedTrees
    from ftmoe.predictor.baselines.markov import MarkovDetector
    from ftmoe.predictor.baselines.mlp import SeedMLP
    from ftmoe.predictor.baselines.pregan import PreGANPlusPredictor, PreGANPredictor
    from ftmoe.predictor.baselines.rules import DFTM, ECLB, PCFT, PromQLRules
    from ftmoe.predictor.ftmoe_predictor import FTMoEPredictor

    classes: list[type[Predictor]] = [FTMoEPredictor, SeedMLP, DFTM, PCFT, ECLB, PromQLRules, GradientBoostedTrees, CMODLB,
                                      PreGANPredictor, PreGANPlusPredictor, MarkovDetector]
    return {c.kind: c for c in classes}


def predictor_class(kind: str) -> type[Predictor]:
    known = kinds()
    if kind not in known:
        raise ValueError(f"unknown model type {kind!r}; choose one of: {', '.join(sorted(known))}")
    return known[kind]
