"""FT-MoE behind the Predictor interface: training, inference and model files.

With ``TrainOptions.members`` K > 1 the model is a deep ensemble (Lakshminarayanan et al.
2017): K networks, seeds seed..seed+K-1, each early-stopped on validation on its own, whose
fault and type probabilities are averaged; calibration and the threshold are then fitted on
the average. Its model file keeps the first network's tensors under their own names (so a
one-network file is unchanged) and member k's under ``member<k>.``."""

from __future__ import annotations

import copy
import math
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from tqdm import tqdm

from ftmoe.contract.dataset import Dataset
from ftmoe.predictor import losses
from ftmoe.predictor.base import WEIGHTS_FILE, Prediction, Predictor, TrainOptions, average_precision
from ftmoe.predictor.config import ModelConfig
from ftmoe.predictor.data import Normaliser, Splits, WindowSet, collate, fitting_end, migration_edges
from ftmoe.predictor.model import FTMoE


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed)


class FTMoEPredictor(Predictor):
    kind = "ftmoe"
    normalises = True

    def __init__(self) -> None:
        super().__init__()
        self.model: FTMoE | None = None
        # A deep ensemble (--members K) keeps its first network in ``model`` and the others
        # here; inference averages their fault probabilities before calibration.
        self.others: list[FTMoE] = []
        self.normaliser: Normaliser | None = None
        self.loss_weights = losses.LossWeights()

    @property
    def members(self) -> list[FTMoE]:
        return [self.model, *self.others] if self.model is not None else []

    # -- helpers ----------------------------------------------------------------------------

    def build(self, config: ModelConfig) -> Any:
        self.model = FTMoE(config)
        return self.model

    def loader(
        self, features: np.ndarray, labels: np.ndarray, edges: list[np.ndarray], ends: np.ndarray, batch: int, shuffle: bool, seed: int = 0
    ) -> torch.utils.data.DataLoader:
        ws = WindowSet(features, labels, edges, ends, self.window, self.lead, self.horizon)
        gen = torch.Generator().manual_seed(seed)
        return torch.utils.data.DataLoader(ws, batch_size=batch, shuffle=shuffle, collate_fn=collate, generator=gen)

    def loss(self, out: Any, y: torch.Tensor, pos_weight: float) -> tuple[torch.Tensor, dict[str, float]]:
        assert self.model is not None
        faulty = y > 0
        fault_class = torch.where(faulty, y - 1, torch.full_like(y, -1)).reshape(-1)
        l_d = losses.detection_loss(out.logits, faulty, pos_weight)
        l_c = losses.triplet_loss(
            out.embedding.reshape(-1, out.embedding.shape[-1]), self.model.classify.prototypes, fault_class, self.loss_weights.margin
        )
        moe = getattr(self.model, "moe", None)
        gate = moe.last if moe is not None else None
        l_es = losses.expert_selection_loss(gate.similarity) if gate is not None else out.logits.sum() * 0
        w = self.loss_weights
        total = w.detection * l_d + w.classification * l_c + w.expert_selection * l_es
        parts = {"detection": l_d.item(), "classification": l_c.item(), "expert_selection": l_es.item()}
        residual = getattr(self.model, "last_residual", None)
        if residual is not None:
            healthy = ~faulty.reshape(-1)
            l_n = residual[healthy].pow(2).mean() if healthy.any() else residual.sum() * 0
            total = total + w.nowcast * l_n
            parts["nowcast"] = l_n.item()
        return total, parts

    @torch.no_grad()
    def _infer(self, loader: torch.utils.data.DataLoader, members: list[FTMoE] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Fault and type probabilities of ``members`` (default: every member), averaged."""
        nets = members or self.members
        assert nets
        for net in nets:
            net.eval()
        probs, types, ys = [], [], []
        for x, y, e, _ in loader:
            outs = [net(x, e) for net in nets]
            probs.append(np.mean([o.fault_probability.numpy() for o in outs], axis=0))
            types.append(np.mean([o.type_probability.numpy() for o in outs], axis=0))
            ys.append(y.numpy())
        return np.concatenate(probs), np.concatenate(types), np.concatenate(ys)

    # -- training ---------------------------------------------------------------------------

    def fit(self, ds: Dataset, splits: Splits, options: TrainOptions, progress: bool = True) -> dict[str, Any]:
        """Trains ``options.members`` networks, member k with seed ``options.seed + k``, each
        early-stopped on validation on its own; the model is their average."""
        self.others = []
        trained: list[FTMoE] = []
        history: list[dict[str, float]] = []
        epochs_run: list[int] = []
        for k in range(options.members):
            if options.members > 1 and (progress or options.log_epochs):
                print(f"member {k + 1}/{options.members} (seed {options.seed + k})", file=sys.stderr, flush=True)
            rows = self._fit_one(ds, splits, replace(options, seed=options.seed + k), progress)
            history += [{"member": k + 1, **row} for row in rows] if options.members > 1 else rows
            epochs_run.append(len(rows))
            assert self.model is not None
            trained.append(self.model)
        self.model, self.others = trained[0], trained[1:]
        if self.others:
            # What the ensemble scores on validation, not its last member's figure.
            assert self.normaliser is not None
            x, edges = self.normaliser(ds.features), migration_edges(ds.migrations, ds.shape[0])
            prob, _, y = self._infer(self.loader(x, ds.labels, edges, splits.val, 256, False))
            self.info.update(val_pr_auc=average_precision(prob, y > 0), members=options.members, epochs_run=epochs_run)
        return {"history": history, "best_val_pr_auc": self.info["val_pr_auc"]}

    def _fit_one(self, ds: Dataset, splits: Splits, options: TrainOptions, progress: bool) -> list[dict[str, float]]:
        """One network, in ``self.model``; returns its per-epoch history."""
        log_epochs = options.log_epochs
        seed_everything(options.seed)
        self.feature_names = list(ds.feature_names)
        self.class_names = list(ds.class_names)
        self.window, self.lead = options.window, options.lead
        T = ds.shape[0]
        self.normaliser = Normaliser.fit(ds.features[: fitting_end(splits, T)], options.normalisation)
        x = self.normaliser(ds.features)
        edges = migration_edges(ds.migrations, T)
        train_ends = splits.train
        if options.max_train_windows and len(train_ends) > options.max_train_windows:
            rng = np.random.default_rng(options.seed)
            train_ends = np.sort(rng.choice(train_ends, options.max_train_windows, replace=False))
        config = ModelConfig(
            features=x.shape[-1],  # 2F when the normaliser gives quantile and z-score side by side
            classes=len(ds.class_names) - 1,
            window=options.window,
            feature_names=self.feature_names,
            class_names=self.class_names,
            **options.overrides,
        )
        model = self.build(config)
        if getattr(model, "nowcast", None) is not None and options.pretrain_epochs > 0:  # PreGAN-style nets have none
            self.pretrain_nowcast(x, ds, splits, options, progress or log_epochs)
        # With --ema, a moving average of the weights is what validation scores and what is
        # kept: with a few dozen training faults the raw weights swing from batch to batch.
        # (bench/realdata_ablation.py found it no help on ASD or Nezha; off by default.)
        swa = torch.optim.swa_utils
        averaged = (
            swa.AveragedModel(model, use_buffers=True, multi_avg_fn=swa.get_ema_multi_avg_fn(options.ema)) if options.ema > 0 else None
        )
        train_labels = self.targets(ds, train_ends)
        pos = float((train_labels > 0).mean())
        pos_weight = math.sqrt((1 - pos) / pos) if 0 < pos < 1 and options.pos_weight == "sqrt" else 1.0
        opt = torch.optim.AdamW(model.parameters(), lr=options.lr, weight_decay=options.weight_decay)
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=options.lr_step, gamma=options.lr_gamma)
        train_dl = self.loader(x, ds.labels, edges, train_ends, options.batch_size, True, options.seed)
        val_dl = self.loader(x, ds.labels, edges, splits.val, 256, False)
        history: list[dict[str, float]] = []
        # Early stopping on validation PR-AUC (average precision): it ranks, so it does not
        # depend on a threshold, and it is far less noisy than F1 when positives are rare.
        best_ap, best_state, bad = -1.0, None, 0
        for epoch in range(options.epochs):
            model.train()
            parts: dict[str, float] = {}
            bar = tqdm(
                train_dl,
                desc=f"epoch {epoch + 1}/{options.epochs}",
                unit="batch",
                file=sys.stderr,
                disable=not progress or not sys.stderr.isatty(),
                leave=False,
                mininterval=1.0,
            )
            for xb, yb, eb, _ in bar:
                out = model(xb, eb)
                total, p = self.loss(out, yb, pos_weight)
                opt.zero_grad()
                total.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
                opt.step()
                self.after_step(out, yb)
                if averaged is not None:
                    averaged.update_parameters(model)
                for k, v in p.items():
                    parts[k] = parts.get(k, 0.0) + v / len(train_dl)
                bar.set_postfix(loss=f"{total.item():.3f}")
            sched.step()
            live = self.swap_in(averaged)
            prob, _, y = self._infer(val_dl, [model])
            ap = average_precision(prob, y > 0)
            row = {"epoch": epoch + 1, "val_pr_auc": ap, "lr": opt.param_groups[0]["lr"], **parts}
            history.append(row)
            if progress or log_epochs:
                print(
                    f"epoch {epoch + 1:3d}/{options.epochs}  loss D {parts.get('detection', 0):.3f} "
                    f"C {parts.get('classification', 0):.3f} ES {parts.get('expert_selection', 0):.3f}  "
                    f"val PR-AUC {ap:.4f}",
                    file=sys.stderr,
                    flush=True,
                )
            improved = ap > best_ap + 1e-4
            if improved:
                best_ap, best_state, bad = ap, copy.deepcopy(model.state_dict()), 0
            if live is not None:
                model.load_state_dict(live)
            if not improved:
                bad += 1
                if bad >= options.patience and epoch + 1 >= options.min_epochs:
                    if progress or log_epochs:
                        print(f"early stop: no validation PR-AUC gain in {bad} epochs (best {best_ap:.4f})", file=sys.stderr)
                    break
        if best_state is not None:
            model.load_state_dict(best_state)
        self.info = {
            "val_pr_auc": best_ap,
            "epochs_run": len(history),
            "experts": self.n_experts(),
            "architecture": config.to_dict(),
            "train_windows": int(len(train_ends)),
        }
        return history

    def pretrain_nowcast(self, x: np.ndarray, ds: Dataset, splits: Splits, options: TrainOptions, log: bool) -> None:
        """Teach the nowcaster each host's normal dynamics before the detector trains, on
        every window inside the training period, unlabelled history included: it needs
        features only, and real data has far more of those than labelled faults (ASD: 30
        unlabelled days before 10 labelled ones)."""
        from ftmoe.predictor.baselines.common import windows
        from ftmoe.predictor.data import TRAIN, window_ends

        assert self.model is not None and self.model.nowcast is not None
        ends = window_ends(splits.assignment, TRAIN, options.window, 0, 1, ds.breaks, None)
        if len(ends) == 0:
            return
        all_windows = torch.from_numpy(windows(x, ends, options.window))  # [N, W, H, F]
        net = self.model.nowcast
        opt = torch.optim.AdamW(net.parameters(), lr=options.lr, weight_decay=options.weight_decay)
        gen = torch.Generator().manual_seed(options.seed)
        H = x.shape[1]
        for epoch in range(options.pretrain_epochs):
            order = torch.randperm(len(all_windows), generator=gen)
            total = 0.0
            for b in range(0, len(order), 64):
                w = all_windows[order[b : b + 64]]
                loss = net(w.permute(0, 2, 1, 3).reshape(-1, options.window, w.shape[-1])).pow(2).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += loss.item() * len(w)
            if log:
                print(
                    f"nowcast pre-training {epoch + 1}/{options.pretrain_epochs}  MSE {total / len(order):.4f} "
                    f"({len(ends)} windows x {H} hosts)",
                    file=sys.stderr,
                    flush=True,
                )

    def swap_in(self, averaged: Any) -> dict[str, torch.Tensor] | None:
        """Put the averaged weights into the model for validation; returns the live ones."""
        if averaged is None:
            return None
        assert self.model is not None
        live = copy.deepcopy(self.model.state_dict())
        self.model.load_state_dict(averaged.module.state_dict())
        return live

    def after_step(self, out: Any, y: torch.Tensor) -> None:
        """The moving-average half of the hybrid prototype update."""
        assert self.model is not None
        faulty = y > 0
        fault_class = torch.where(faulty, y - 1, torch.full_like(y, -1)).reshape(-1)
        self.model.classify.update_prototypes(out.embedding.detach().reshape(-1, out.embedding.shape[-1]), fault_class)

    # -- inference --------------------------------------------------------------------------

    def raw_predict(self, features: np.ndarray, migrations: np.ndarray, ends: np.ndarray) -> Prediction:
        if self.model is None or self.normaliser is None:
            raise RuntimeError("the model is not trained or loaded")
        T, H, _ = features.shape
        x = self.normaliser(features)
        edges = migration_edges(migrations, T)
        # Targets beyond the data are unknown at inference time; pad labels with zeros.
        labels = np.zeros((T + self.lead, H), dtype=np.int8)
        prob, types, _ = self._infer(self.loader(x, labels, edges, np.asarray(ends), 256, False))
        return Prediction(prob, types, self.threshold)

    # -- files ------------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        assert self.model is not None and self.normaliser is not None
        out = {"architecture": self.model.config.to_dict(), "normalisation": self.normaliser.to_dict(), "experts": self.n_experts()}
        if self.others:
            out["members"] = [{"experts": n_experts(net)} for net in self.others]
        return out

    def n_experts(self) -> int:
        return n_experts(self.model)

    def save_weights(self, folder: Path) -> None:
        """One file: the first member's tensors under their own names (a one-network model's
        file), member k's (k >= 1) under ``member<k>.<name>``."""
        assert self.model is not None
        tensors = {k: v.contiguous() for k, v in self.model.state_dict().items()}
        for k, net in enumerate(self.others, start=1):
            tensors.update({f"{MEMBER_PREFIX}{k}.{name}": v.contiguous() for name, v in net.state_dict().items()})
        save_file(tensors, str(folder / WEIGHTS_FILE))

    def load_state(self, state: dict[str, Any], folder: Path) -> None:
        self.normaliser = Normaliser(**state["normalisation"])
        weights = folder / WEIGHTS_FILE
        if not weights.is_file():
            raise ValueError(f"{weights} is missing")
        tensors = load_file(str(weights))
        specs = [{"experts": state.get("experts")}, *(state.get("members") or [])]
        nets = []
        for k, spec in enumerate(specs):
            config = ModelConfig.from_dict(state["architecture"])
            config.experts = int(spec.get("experts") or config.experts)
            net = self.build(config)
            prefix = f"{MEMBER_PREFIX}{k}." if k else ""
            own = {
                name[len(prefix) :]: v
                for name, v in tensors.items()
                if name.startswith(prefix) and (k or not name.startswith(MEMBER_PREFIX))
            }
            if not own:
                raise ValueError(f"{weights} has no tensors for ensemble member {k} (config.json names {len(specs)} members)")
            net.load_state_dict(own)
            net.eval()
            nets.append(net)
        self.model, self.others = nets[0], nets[1:]


MEMBER_PREFIX = "member"


def n_experts(net: Any) -> int:
    moe = getattr(net, "moe", None)
    return moe.n_experts if moe is not None else 0
