"""Schedule-aware graph encoder: GATv2 attention over the interval's migration graph.

For host i with neighbourhood N(i) in the schedule graph (an edge j -> i when a task
migrated from host j to host i) GATv2 (Brody et al., ICLR 2022) computes

    e_ij = a^T LeakyReLU(W [x_i || x_j]),   alpha_ij = softmax_j(e_ij),
    x'_i = sum_{j in N(i) + {i}} alpha_ij W_r x_j

Self loops keep isolated hosts' own features. Shapes: x [N, d] for N = B*H hosts of a
batch of B graphs, edge_index [2, E] (already offset per graph) -> [N, d].
"""

from __future__ import annotations

import torch
from torch import nn

from ftmoe.predictor.pyg import GATv2Conv


class ScheduleGraphEncoder(nn.Module):
    def __init__(self, hidden: int, layers: int = 2, heads: int = 2, dropout: float = 0.1):
        super().__init__()
        self.convs = nn.ModuleList(
            GATv2Conv(hidden, hidden // heads, heads=heads, concat=True, add_self_loops=True, dropout=dropout) for _ in range(layers)
        )
        self.norms = nn.ModuleList(nn.LayerNorm(hidden) for _ in range(layers))

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        for conv, norm in zip(self.convs, self.norms):
            x = norm(x + torch.nn.functional.elu(conv(x, edge_index)))
        return x
