"""Output heads: fault detection (FFN_D) and fault classification (FFN_C + prototypes).

    P(fault)  = softmax(Linear_D(c))[1]            c [N, d] -> [N, 2]
    z         = sigmoid(Linear_C(c))               c [N, d] -> [N, e]   (e = 8)
    type      = argmin_k || z - P_k ||_2           P [K, e] trainable prototypes

Prototypes start uniform in [0, 1] and learn by a hybrid of gradient (the triplet loss)
and a moving average towards the mean embedding of their class (weight 0.9 on the old).
"""

from __future__ import annotations

import torch
from torch import nn


class DetectionHead(nn.Module):
    def __init__(self, hidden: int):
        super().__init__()
        self.linear = nn.Linear(hidden, 2)

    def forward(self, c: torch.Tensor) -> torch.Tensor:
        """Logits [N, 2]; softmax gives (P(no fault), P(fault))."""
        return self.linear(c)


class ClassificationHead(nn.Module):
    def __init__(self, hidden: int, embedding: int, classes: int, momentum: float = 0.9):
        super().__init__()
        self.linear = nn.Linear(hidden, embedding)
        self.prototypes = nn.Parameter(torch.rand(classes, embedding))
        self.momentum = momentum

    def forward(self, c: torch.Tensor) -> torch.Tensor:
        """Fault embeddings [N, e] in (0, 1)."""
        return torch.sigmoid(self.linear(c))

    def distances(self, z: torch.Tensor) -> torch.Tensor:
        """Euclidean distance of each embedding to each prototype, [N, K]."""
        return torch.cdist(z, self.prototypes)

    def type_probabilities(self, z: torch.Tensor) -> torch.Tensor:
        """A soft version of nearest-prototype typing, for ranking: softmax(-distance)."""
        return torch.softmax(-self.distances(z) * 4.0, dim=-1)

    @torch.no_grad()
    def update_prototypes(self, z: torch.Tensor, fault_class: torch.Tensor) -> None:
        """Moving-average half of the hybrid update; ``fault_class`` in 0..K-1, -1 = skip."""
        for k in range(self.prototypes.shape[0]):
            sel = fault_class == k
            if sel.any():
                self.prototypes[k] = self.momentum * self.prototypes[k] + (1 - self.momentum) * z[sel].mean(dim=0)
