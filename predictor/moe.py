"""Fault-adaptive mixture of experts: EAGate routing over a set of small expert MLPs.

    y = sum_{i in selected(x)} w_i(x) E_i(x),     E_i: d -> d (two-layer MLP)

Shapes: x [N, d] -> y [N, d]. Experts can be added and removed while running (online
tuning); ``stats`` of the last forward pass record which experts each input activated.
"""

from __future__ import annotations

import torch
from torch import nn

from ftmoe.predictor.eagate import EAGate, GateOutput, StaticTopKGate


def make_expert(hidden: int, dropout: float) -> nn.Module:
    return nn.Sequential(nn.Linear(hidden, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, hidden))


class FaultAdaptiveMoE(nn.Module):
    def __init__(self, hidden: int, experts: int, k_max: int, dropout: float = 0.1, gate: str = "eagate", static_k: int = 2):
        super().__init__()
        self.hidden = hidden
        self.dropout = dropout
        if gate == "eagate":
            self.gate: EAGate | StaticTopKGate = EAGate(hidden, experts, k_max)
        elif gate == "topk":
            self.gate = StaticTopKGate(hidden, experts, static_k)
        else:
            raise ValueError(f"gate must be 'eagate' or 'topk', got {gate!r}")
        self.experts = nn.ModuleList(make_expert(hidden, dropout) for _ in range(experts))
        self.last: GateOutput | None = None

    @property
    def n_experts(self) -> int:
        return len(self.experts)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        g = self.gate(x)
        self.last = g
        out = torch.zeros_like(x)
        for i, expert in enumerate(self.experts):
            rows = g.selected[:, i].nonzero(as_tuple=True)[0]
            if rows.numel():
                out = out.index_add(0, rows, g.weights[rows, i : i + 1] * expert(x[rows]))
        return out

    # -- online tuning ---------------------------------------------------------------------

    @torch.no_grad()
    def remove_experts(self, keep: torch.Tensor) -> None:
        """Keep the experts where ``keep`` [M] is True."""
        idx = keep.nonzero(as_tuple=True)[0]
        if idx.numel() == 0:
            raise ValueError("cannot remove every expert")
        self.experts = nn.ModuleList(self.experts[int(i)] for i in idx)
        self.gate.representations = nn.Parameter(self.gate.representations[idx].clone())
        if isinstance(self.gate, EAGate):
            self.gate.thresholds = nn.Parameter(self.gate.thresholds[idx].clone())

    @torch.no_grad()
    def add_expert(self, representation: torch.Tensor, threshold_logit: float = -10.0) -> None:
        """A new expert whose activation threshold is (after the sigmoid) about 0, so the
        inputs that activated nothing activate it."""
        self.experts.append(make_expert(self.hidden, self.dropout).to(representation.device))
        reps = torch.cat([self.gate.representations, representation.reshape(1, -1)])
        self.gate.representations = nn.Parameter(reps)
        if isinstance(self.gate, EAGate):
            self.gate.thresholds = nn.Parameter(torch.cat([self.gate.thresholds, torch.tensor([threshold_logit])]))
