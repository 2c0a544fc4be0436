"""Model kinds by name: FT-MoE and the baselines, for `--model-type` and model files."""

from __future__ import annotations

from ftmoe.predictor.base import Predictor


def kinds() -> dict[str, type[Predictor]]:
    from ftmoe.predictor.ftmoe_predictor import FTMoEPredictor

    return {FTMoEPredictor.kind: FTMoEPredictor}


def predictor_class(kind: str) -> type[Predictor]:
    known = kinds()
    if kind not in known:
        raise ValueError(f"unknown model type {kind!r}; choose one of: {', '.join(sorted(known))}")
    return known[kind]
