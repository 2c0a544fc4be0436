"""Nowcast residual: how far each host's latest interval is from what its own recent
past predicts.

    x̂_t = MLP(flatten(x_{t-W+1} .. x_{t-1}))          [N, F]
    r_t = x_t - x̂_t                                    [N, F]

Trained by mean squared error on healthy host-windows only, so it learns each host's
normal dynamics and a fault shows as a large residual; the residual is an input of the
host encoder. It needs no label (the idea behind reconstruction- and forecast-based
anomaly detectors) and is available at inference time. Shapes: x [N, W, F] -> r [N, F].
"""

from __future__ import annotations

import torch
from torch import nn


class Nowcaster(nn.Module):
    def __init__(self, window: int, features: int, hidden: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(max(window - 1, 1) * features, hidden), nn.GELU(), nn.Linear(hidden, features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        N, W, F = x.shape
        past = x[:, :-1] if W > 1 else torch.zeros_like(x)
        return x[:, -1] - self.net(past.reshape(N, -1))
