"""Cross multi-head attention between the MoE path (queries) and the graph path (keys and
values): each host's features search the schedule graph's hosts for the relations that
affect them.

    head_h = softmax(Q W_h^Q (K W_h^K)^T / sqrt(d_k)) V W_h^V,   out = [head_1..head_n] W^O

Shapes: q, kv [B, H, d] -> [B, H, d]. Attention runs over the H hosts of each cluster
snapshot. Queries are processed in chunks of ``chunk`` hosts, so memory grows as
chunk x H per head instead of H x H: at H = 5,000 a full matrix per head would be 25 M
entries; chunking changes no number (tests compare it with the unchunked result).
"""

from __future__ import annotations

import torch
from torch import nn


class CrossMultiHeadAttention(nn.Module):
    def __init__(self, hidden: int, heads: int = 4, dropout: float = 0.1, chunk: int = 1024):
        super().__init__()
        if hidden % heads:
            raise ValueError(f"hidden ({hidden}) must be divisible by heads ({heads})")
        self.heads = heads
        self.d_k = hidden // heads
        self.q = nn.Linear(hidden, hidden)
        self.k = nn.Linear(hidden, hidden)
        self.v = nn.Linear(hidden, hidden)
        self.out = nn.Linear(hidden, hidden)
        self.dropout = dropout
        self.chunk = chunk

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        B, H, _ = x.shape
        return x.view(B, H, self.heads, self.d_k).transpose(1, 2)  # [B, heads, H, d_k]

    def forward(self, query: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        B, H, d = query.shape
        q, k, v = self._split(self.q(query)), self._split(self.k(context)), self._split(self.v(context))
        p = self.dropout if self.training else 0.0
        parts = [
            nn.functional.scaled_dot_product_attention(q[:, :, s : s + self.chunk], k, v, dropout_p=p) for s in range(0, H, self.chunk)
        ]
        att = torch.cat(parts, dim=2).transpose(1, 2).reshape(B, H, d)
        return self.out(att)
