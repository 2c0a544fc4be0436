"""FT-MoE, read top to bottom.

    input  x [B, W, H, F] (a window of W intervals of H hosts' F normalised features)
           edge_index [2, E] (the batch's schedule graphs, node ids offset by b * H)
    1. host encoder:  h = MLP(flatten_W(x) ++ stats_W(x))            [B*H, d]
                      stats: per feature the window's mean, std, slope, last - mean [B*H, 4F]
    2. graph path:    g = GATv2 encoder(h, edges)                    [B*H, d]
    3. MoE path:      m = FaultAdaptiveMoE(h)  (EAGate, Top-any)     [B*H, d]
    4. fusion:        c = LayerNorm(m + CMHA(q=m, kv=g))             [B, H, d]
    5. heads:         detection logits [B, H, 2]; fault embedding [B, H, e]

Ablations (config): gate="topk"; use_cmha=False (c = LayerNorm(m + g)); use_graph=False
(g = h, no message passing over migrations).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ftmoe.predictor.cmha import CrossMultiHeadAttention
from ftmoe.predictor.config import ModelConfig
from ftmoe.predictor.graph_encoder import ScheduleGraphEncoder
from ftmoe.predictor.heads import ClassificationHead, DetectionHead
from ftmoe.predictor.moe import FaultAdaptiveMoE
from ftmoe.predictor.nowcast import Nowcaster


@dataclass
class Output:
    logits: torch.Tensor  # [B, H, 2]
    embedding: torch.Tensor  # [B, H, e]
    fault_probability: torch.Tensor  # [B, H]
    type_probability: torch.Tensor  # [B, H, K]


def window_stats(w: torch.Tensor) -> torch.Tensor:
    """[..., W, F] -> [..., 4F]: mean, std, least-squares slope and last - mean over W."""
    W = w.shape[-2]
    mean = w.mean(dim=-2)
    std = w.std(dim=-2, unbiased=False)
    t = torch.arange(W, dtype=w.dtype, device=w.device) - (W - 1) / 2
    slope = (w * t[:, None]).sum(dim=-2) / (t.pow(2).sum().clamp_min(1e-9))
    return torch.cat([mean, std, slope, w[..., -1, :] - mean], dim=-1)


class FTMoE(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = c = config
        inputs = c.window * c.features + (4 * c.features if c.window_stats else 0) + (c.features if c.nowcast else 0)
        self.nowcast = Nowcaster(c.window, c.features, c.hidden) if c.nowcast else None
        self.last_residual: torch.Tensor | None = None
        self.host_encoder = nn.Sequential(
            nn.Linear(inputs, c.hidden), nn.GELU(), nn.Dropout(c.dropout), nn.Linear(c.hidden, c.hidden), nn.LayerNorm(c.hidden)
        )
        self.graph = ScheduleGraphEncoder(c.hidden, c.graph_layers, c.graph_heads, c.dropout) if c.use_graph else None
        self.moe = FaultAdaptiveMoE(c.hidden, c.experts, c.k_max, c.dropout, c.gate, c.static_k)
        self.cmha = CrossMultiHeadAttention(c.hidden, c.cmha_heads, c.dropout, c.cmha_chunk) if c.use_cmha else None
        self.norm = nn.LayerNorm(c.hidden)
        self.detect = DetectionHead(c.hidden)
        self.classify = ClassificationHead(c.hidden, c.embedding, c.classes)

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor) -> Output:
        B, W, H, F = x.shape
        if self.config.input_clip > 0:
            x = x.clamp(-self.config.input_clip, self.config.input_clip)
        if self.training and self.config.input_noise > 0:
            x = x + self.config.input_noise * torch.randn_like(x)
        per_host = x.permute(0, 2, 1, 3)  # [B, H, W, F]
        flat = per_host.reshape(B * H, W * F)
        if self.config.window_stats:
            flat = torch.cat([flat, window_stats(per_host).reshape(B * H, 4 * F)], dim=-1)
        if self.nowcast is not None:
            self.last_residual = self.nowcast(per_host.reshape(B * H, W, F))
            flat = torch.cat([flat, self.last_residual], dim=-1)
        h = self.host_encoder(flat)
        g = self.graph(h, edge_index) if self.graph is not None else h
        m = self.moe(h)
        m3, g3 = m.view(B, H, -1), g.view(B, H, -1)
        fused = m3 + self.cmha(m3, g3) if self.cmha is not None else m3 + g3
        c = self.norm(fused)
        logits = self.detect(c)
        z = self.classify(c.reshape(B * H, -1))
        return Output(
            logits=logits,
            embedding=z.view(B, H, -1),
            fault_probability=torch.softmax(logits, dim=-1)[..., 1],
            type_probability=self.classify.type_probabilities(z).view(B, H, -1),
        )
