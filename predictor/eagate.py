"""Experts-Adaptation Gating (EAGate) with Top-any selection, and a static top-k gate.

For input x [N, d] and expert representations e [M, d]:

    s_i   = cos(x, e_i)                      similarity, [N, M]
    p_i   = sigmoid(s_i)                     activation probability
    tau_i = sigmoid(theta_i)                 trainable threshold per expert
    a_i   = 1[p_i > tau_i]                   activatable (straight-through: the forward pass
                                             uses the hard 0/1, the backward pass the
                                             gradient of p_i - tau_i, so thresholds learn)
    Top-any: more than k_max activatable -> keep the k_max most similar of them;
             none -> keep the single most similar expert; else keep all activatable.
    w_i   = m_i exp(s_i / T) / sum_j m_j exp(s_j / T)   weights over the selected set

Returns weights [N, M] (zero off the selection), the similarities [N, M] (for the
expert-selection loss) and the pre-fallback activatable mask (for online tuning).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class GateOutput:
    weights: torch.Tensor  # [N, M], rows sum to 1
    similarity: torch.Tensor  # [N, M]
    activatable: torch.Tensor  # [N, M] bool, before the "none -> most similar" fallback
    selected: torch.Tensor  # [N, M] bool, after Top-any


def cosine_similarity(x: torch.Tensor, representations: torch.Tensor) -> torch.Tensor:
    """[N, d] x [M, d] -> [N, M] cosine similarities."""
    return nn.functional.normalize(x, dim=-1) @ nn.functional.normalize(representations, dim=-1).T


class EAGate(nn.Module):
    def __init__(self, hidden: int, experts: int, k_max: int, temperature: float = 0.1):
        super().__init__()
        self.k_max = k_max
        self.temperature = temperature
        self.representations = nn.Parameter(torch.randn(experts, hidden) * 0.5)
        # sigmoid(0) = 0.5 = sigmoid(cos = 0): an expert starts half-open.
        self.thresholds = nn.Parameter(torch.zeros(experts))

    @property
    def experts(self) -> int:
        return self.representations.shape[0]

    def forward(self, x: torch.Tensor) -> GateOutput:
        sim = cosine_similarity(x, self.representations)
        margin = torch.sigmoid(sim) - torch.sigmoid(self.thresholds)
        hard = (margin > 0).float()
        activatable = hard.bool()
        # Top-any on the hard mask: cap at k_max by similarity, fall back to the best one.
        ranked = torch.where(activatable, sim, torch.full_like(sim, -torch.inf))
        k = min(self.k_max, sim.shape[-1])
        top = torch.zeros_like(activatable)
        top.scatter_(-1, ranked.topk(k, dim=-1).indices, True)
        selected = activatable & top
        none = ~activatable.any(dim=-1)
        best = torch.zeros_like(activatable)
        best.scatter_(-1, sim.argmax(dim=-1, keepdim=True), True)
        selected = torch.where(none.unsqueeze(-1), best, selected)
        # Straight-through: forward value = the hard selection, gradient via the margin.
        soft = torch.where(none.unsqueeze(-1), torch.ones_like(margin), margin - margin.detach() + 1.0)
        mask = selected.float() * soft
        logits = torch.where(selected, sim / self.temperature, torch.full_like(sim, -torch.inf))
        weights = torch.softmax(logits, dim=-1) * mask
        weights = weights / weights.sum(dim=-1, keepdim=True).detach().clamp_min(1e-9)
        return GateOutput(weights, sim, activatable, selected)


class StaticTopKGate(nn.Module):
    """Ablation: a conventional gate that always activates the k most similar experts."""

    def __init__(self, hidden: int, experts: int, k: int, temperature: float = 0.1):
        super().__init__()
        self.k = k
        self.temperature = temperature
        self.representations = nn.Parameter(torch.randn(experts, hidden) * 0.5)

    @property
    def experts(self) -> int:
        return self.representations.shape[0]

    def forward(self, x: torch.Tensor) -> GateOutput:
        sim = cosine_similarity(x, self.representations)
        selected = torch.zeros_like(sim, dtype=torch.bool)
        selected.scatter_(-1, sim.topk(min(self.k, sim.shape[-1]), dim=-1).indices, True)
        logits = torch.where(selected, sim / self.temperature, torch.full_like(sim, -torch.inf))
        return GateOutput(torch.softmax(logits, dim=-1), sim, selected, selected)
