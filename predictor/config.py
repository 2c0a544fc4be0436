"""The FT-MoE architecture's settings, with the paper's defaults."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

# How the networks' inputs are normalised (predictor.data.Normaliser); "auto" trains with
# zscore and with quantile and keeps the higher validation PR-AUC (predictor.base).
NORMALISATIONS = ("zscore", "quantile", "both", "ple")
DEFAULT_NORMALISATION = "zscore"


@dataclass
class ModelConfig:
    features: int  # F, taken from the dataset
    classes: int  # K fault classes, excluding "none" (cpu, memory, disk -> 3)
    window: int = 6  # W past intervals seen per prediction
    hidden: int = 32  # d, width of every path
    graph_layers: int = 2
    graph_heads: int = 2
    experts: int = 12  # the paper's 12 experts
    k_max: int = 8  # the paper's maximum of 8 active experts per input
    cmha_heads: int = 4
    embedding: int = 8  # fault embedding dimension (FFN_C output)
    dropout: float = 0.1
    gate: str = "eagate"  # "eagate" | "topk" (ablation: static top-k)
    static_k: int = 2  # experts per input for the static top-k ablation
    use_graph: bool = True  # ablation: no schedule-aware graph encoder
    use_cmha: bool = True  # ablation: no cross multi-head attention
    cmha_chunk: int = 1024  # queries per chunk, bounds CMHA memory at large H
    # the host encoder also sees each feature's window mean, std, slope and last - mean:
    # the summary a tree gets for free, which an MLP on the flat window must learn from
    # few positives (model files written before this field read as False)
    window_stats: bool = True
    # std of Gaussian noise added to the normalised inputs while training (0 = none): a
    # regulariser for small real datasets, where the network overfits within an epoch
    input_noise: float = 0.0
    # clamp the normalised inputs to [-c, c] (0 = off): heavy-tailed real metrics (latency,
    # bytes) reach z-scores in the hundreds, which saturate an MLP but not a tree
    input_clip: float = 0.0
    # the host encoder also sees the nowcast residual of the latest interval (nowcast.py)
    nowcast: bool = False
    feature_names: list[str] = field(default_factory=list)
    class_names: list[str] = field(default_factory=list)  # all classes, "none" first

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"model config has unknown keys {sorted(unknown)}: written by a newer ftmoe?")
        return cls(**{**LEGACY, **d})


# What a field absent from an older model file meant when that file was written.
LEGACY: dict[str, Any] = {"window_stats": False, "input_noise": 0.0, "input_clip": 0.0, "nowcast": False}
