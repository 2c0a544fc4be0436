"""PreGAN-style and PreGAN+-style predictors, rebuilt from their papers' descriptions.

PreGAN (Tuli et al., 2022): a GRU encodes each host's recent metrics, graph attention
mixes in the hosts linked by the schedule, attention over hosts gives the context, a
detection head flags hosts and prototypes type their faults. PreGAN+ (2023) replaces the
recurrent encoder with a transformer encoder over time. Both train with FT-MoE's
detection and triplet losses (there is no mixture of experts, so no selection loss); the
generative scheduler of the original papers is not part of fault prediction.
"""

from __future__ import annotations

import torch
from torch import nn

from ftmoe.predictor.config import ModelConfig
from ftmoe.predictor.ftmoe_predictor import FTMoEPredictor
from ftmoe.predictor.heads import ClassificationHead, DetectionHead
from ftmoe.predictor.model import Output
from ftmoe.predictor.pyg import GATv2Conv


class PreGANNet(nn.Module):
    def __init__(self, config: ModelConfig, temporal: str = "gru"):
        super().__init__()
        self.config = c = config
        self.embed = nn.Linear(c.features, c.hidden)
        if temporal == "gru":
            self.temporal: nn.Module = nn.GRU(c.hidden, c.hidden, batch_first=True)
        else:
            layer = nn.TransformerEncoderLayer(
                c.hidden, nhead=c.cmha_heads, dim_feedforward=2 * c.hidden, dropout=c.dropout, batch_first=True
            )
            self.temporal = nn.TransformerEncoder(layer, num_layers=2)
            self.position = nn.Parameter(torch.zeros(1, c.window, c.hidden))
        self.kind = temporal
        self.gat = GATv2Conv(c.hidden, c.hidden, heads=1, add_self_loops=True)
        self.attention = nn.MultiheadAttention(c.hidden, c.cmha_heads, dropout=c.dropout, batch_first=True)
        self.norm = nn.LayerNorm(c.hidden)
        self.detect = DetectionHead(c.hidden)
        self.classify = ClassificationHead(c.hidden, c.embedding, c.classes)

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor) -> Output:
        B, W, H, F = x.shape
        seq = self.embed(x.permute(0, 2, 1, 3).reshape(B * H, W, F))
        if self.kind == "gru":
            _, last = self.temporal(seq)
            h = last[-1]
        else:
            h = self.temporal(seq + self.position[:, :W])[:, -1]
        g = torch.nn.functional.elu(self.gat(h, edge_index)) + h
        g3 = g.view(B, H, -1)
        ctx, _ = self.attention(g3, g3, g3, need_weights=False)
        c = self.norm(g3 + ctx)
        logits = self.detect(c)
        z = self.classify(c.reshape(B * H, -1))
        return Output(logits, z.view(B, H, -1), torch.softmax(logits, -1)[..., 1], self.classify.type_probabilities(z).view(B, H, -1))


class PreGANPredictor(FTMoEPredictor):
    kind = "pregan"
    temporal = "gru"

    def build(self, config: ModelConfig) -> PreGANNet:
        self.model = PreGANNet(config, self.temporal)  # type: ignore[assignment]  # PreGAN keeps its own net type where the base names the FT-MoE one
        return self.model  # type: ignore[return-value]  # as above


class PreGANPlusPredictor(PreGANPredictor):
    kind = "pregan_plus"
    temporal = "transformer"
