"""Performance-aware online tuning (the paper's second training stage).

Everything but the fault-adaptive MoE is frozen. While tuning on recent data the tuner
records, over a window of E epochs,

    A_i = number of inputs that activated expert i          (per expert)
    N_x = number of experts input x could activate          (per input, before Top-any's
                                                             "none -> most similar" fallback)

and at the end of each recording window applies two rules:
    1. A_i = 0  -> expert i is removed (nothing needed it);
    2. some N_x = 0 -> one expert is added, its threshold (after the sigmoid) about 0 and
       its representation the mean of those inputs, so they activate it;
then the counters reset. The operator calls ``tune`` with the (windows, graph, label)
buffer it collects from the cluster.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ftmoe.predictor.ftmoe_predictor import FTMoEPredictor


@dataclass
class TuneReport:
    epochs: int = 0
    experts_before: int = 0
    experts_after: int = 0
    removed: list[int] = field(default_factory=list)  # indices at the time of removal
    added: int = 0
    events: list[dict[str, Any]] = field(default_factory=list)


class OnlineTuner:
    def __init__(self, predictor: FTMoEPredictor, record_epochs: int = 2, lr: float = 1e-3, batch_size: int = 32, min_experts: int = 1):
        if predictor.model is None:
            raise ValueError("the predictor has no model to tune")
        if predictor.others:
            raise ValueError(
                f"online tuning adapts one network's experts; this model is an ensemble of {len(predictor.members)} "
                "(trained with --members): tune a model trained with --members 1"
            )
        self.predictor = predictor
        self.record_epochs = record_epochs
        self.lr = lr
        self.batch_size = batch_size
        self.min_experts = min_experts
        self._moe_inputs: torch.Tensor | None = None  # the MoE's input of the last forward pass (a pre-hook sets it)
        self.reset_counters()

    @property
    def moe(self) -> Any:
        assert self.predictor.model is not None
        return self.predictor.model.moe

    def reset_counters(self) -> None:
        self.activations = torch.zeros(self.moe.n_experts, dtype=torch.long)
        self.orphans: list[torch.Tensor] = []  # MoE inputs that could activate no expert
        self.inputs_seen = 0

    def _freeze(self) -> torch.optim.Optimizer:
        model = self.predictor.model
        assert model is not None
        for p in model.parameters():
            p.requires_grad = False
        for p in self.moe.parameters():
            p.requires_grad = True
        return torch.optim.AdamW(self.moe.parameters(), lr=self.lr)

    def record(self) -> None:
        """Count the last forward pass's routing."""
        g = self.moe.last
        if g is None:
            return
        self.activations += g.activatable.sum(dim=0).cpu()
        none = ~g.activatable.any(dim=1)
        self.inputs_seen += int(g.activatable.shape[0])
        if none.any() and self._moe_inputs is not None:
            self.orphans.append(self._moe_inputs[none].detach().cpu())

    def apply_rules(self) -> dict[str, Any]:
        """Rules 1 and 2 at the end of a recording window; returns what changed."""
        event: dict[str, Any] = {"activations": self.activations.tolist(), "orphans": int(sum(len(o) for o in self.orphans))}
        unused = self.activations == 0
        removed: list[int] = []
        if unused.any() and self.moe.n_experts - int(unused.sum()) >= self.min_experts:
            removed = unused.nonzero(as_tuple=True)[0].tolist()
            self.moe.remove_experts(~unused)
        added = 0
        if self.orphans:
            centre = torch.cat(self.orphans).mean(dim=0)
            self.moe.add_expert(centre)
            added = 1
        event.update({"removed": removed, "added": added, "experts": self.moe.n_experts})
        self.reset_counters()
        return event

    def tune(
        self, features: np.ndarray, labels: np.ndarray, migrations: np.ndarray, ends: np.ndarray, epochs: int = 4, seed: int = 0
    ) -> TuneReport:
        """Fine-tune the MoE on windows ending at ``ends`` of raw ``features`` [T, H, F]."""
        from ftmoe.predictor.data import migration_edges, targets

        pred = self.predictor
        model = pred.model
        assert model is not None and pred.normaliser is not None
        report = TuneReport(experts_before=self.moe.n_experts)
        x = pred.normaliser(features)
        edges = migration_edges(migrations, features.shape[0])
        loader = pred.loader(x, labels, edges, ends, self.batch_size, True, seed)
        pos = float((targets(labels, pred.lead, pred.horizon)[ends] > 0).mean())
        pos_weight = float(np.sqrt((1 - pos) / pos)) if 0 < pos < 1 else 1.0
        # The MoE's input is the host encoder's output; capture it to seed new experts.
        hook = model.moe.register_forward_pre_hook(lambda _m, inp: setattr(self, "_moe_inputs", inp[0]))
        try:
            opt = self._freeze()
            for epoch in range(epochs):
                model.train()
                for xb, yb, eb, _ in loader:
                    out = model(xb, eb)
                    self.record()
                    loss, _ = pred.loss(out, yb, pos_weight)
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                report.epochs += 1
                if (epoch + 1) % self.record_epochs == 0:
                    event = self.apply_rules()
                    event["epoch"] = epoch + 1
                    report.events.append(event)
                    report.removed += event["removed"]
                    report.added += event["added"]
                    if event["removed"] or event["added"]:
                        opt = self._freeze()  # the parameter set changed
        finally:
            hook.remove()
            for p in model.parameters():
                p.requires_grad = True
            model.eval()
        report.experts_after = self.moe.n_experts
        pred.info["experts"] = self.moe.n_experts
        return report
