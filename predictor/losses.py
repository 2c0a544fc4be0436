"""FT-MoE's training loss.

L = 0.35 L_D + 0.5 L_C + 0.15 L_ES

L_D  = sum over hosts of the cross-entropy of the detection softmax (averaged over the
       batch), with the fault class up-weighted by sqrt(negatives / positives)
L_C  = triplet loss on truly faulty hosts: max(0, ||z - P_y|| - min_{k != y} ||z - P_k|| + margin)
L_ES = expert selection: the mean squared L2 norm of each input's similarity scores,
       which keeps any expert from dominating every input
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class LossWeights:
    detection: float = 0.35
    classification: float = 0.5
    expert_selection: float = 0.15
    margin: float = 0.5
    nowcast: float = 0.2  # only for models with a nowcaster


def detection_loss(logits: torch.Tensor, faulty: torch.Tensor, pos_weight: float) -> torch.Tensor:
    """logits [B, H, 2], faulty [B, H] bool -> scalar (summed over hosts, mean over batch)."""
    weight = torch.tensor([1.0, pos_weight], device=logits.device)
    ce = nn.functional.cross_entropy(logits.reshape(-1, 2), faulty.reshape(-1).long(), weight=weight, reduction="none")
    return ce.view(faulty.shape).sum(dim=1).mean()


def triplet_loss(z: torch.Tensor, prototypes: torch.Tensor, fault_class: torch.Tensor, margin: float) -> torch.Tensor:
    """z [N, e]; prototypes [K, e]; fault_class [N] in 0..K-1, or -1 for healthy (ignored)."""
    sel = fault_class >= 0
    if not sel.any():
        return z.sum() * 0.0
    d = torch.cdist(z[sel], prototypes)
    y = fault_class[sel]
    pos = d.gather(1, y.unsqueeze(1)).squeeze(1)
    neg = d.masked_fill(nn.functional.one_hot(y, prototypes.shape[0]).bool(), torch.inf).min(dim=1).values
    return torch.relu(pos - neg + margin).mean()


def expert_selection_loss(similarity: torch.Tensor) -> torch.Tensor:
    return similarity.pow(2).sum(dim=-1).mean() / similarity.shape[-1]
