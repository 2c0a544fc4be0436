"""Each FT-MoE component on its own: shapes, the rules it implements, gradients."""

from __future__ import annotations

import pytest
import torch

from ftmoe.predictor.cmha import CrossMultiHeadAttention
from ftmoe.predictor.config import ModelConfig
from ftmoe.predictor.eagate import EAGate, StaticTopKGate
from ftmoe.predictor.graph_encoder import ScheduleGraphEncoder
from ftmoe.predictor.heads import ClassificationHead
from ftmoe.predictor.model import FTMoE
from ftmoe.predictor.moe import FaultAdaptiveMoE


def gate_with(reps: list[list[float]], thresholds: list[float], k_max: int) -> EAGate:
    g = EAGate(hidden=len(reps[0]), experts=len(reps), k_max=k_max)
    with torch.no_grad():
        g.representations.copy_(torch.tensor(reps))
        g.thresholds.copy_(torch.tensor(thresholds))
    return g


def test_eagate_activates_experts_above_their_threshold() -> None:
    # x = (1, 0): cos with e0 = 1, e1 = 0, e2 = -1 -> p = 0.73, 0.5, 0.27
    g = gate_with([[1, 0], [0, 1], [-1, 0]], [0.0, 0.0, -5.0], k_max=3)
    out = g(torch.tensor([[1.0, 0.0]]))
    assert out.activatable.tolist() == [[True, False, True]]  # sigmoid(-5) ~ 0.007 < 0.27
    assert out.selected.tolist() == [[True, False, True]]
    assert out.weights.sum().item() == pytest.approx(1.0)
    assert out.weights[0, 0] > out.weights[0, 2]  # more similar -> larger weight


def test_top_any_caps_at_k_max_by_similarity() -> None:
    g = gate_with([[1, 0], [1, 0.1], [1, 0.5], [0, 1]], [-9.0] * 4, k_max=2)
    out = g(torch.tensor([[1.0, 0.0]]))
    assert out.activatable.sum() == 4
    assert out.selected.tolist() == [[True, True, False, False]]


def test_top_any_falls_back_to_the_most_similar_when_none_is_activatable() -> None:
    g = gate_with([[1, 0], [0, 1], [-1, 0]], [9.0, 9.0, 9.0], k_max=2)
    out = g(torch.tensor([[0.2, 1.0]]))
    assert not out.activatable.any()
    assert out.selected.tolist() == [[False, True, False]]
    assert out.weights[0, 1].item() == pytest.approx(1.0)


def test_thresholds_receive_gradients_through_the_hard_activation() -> None:
    g = gate_with([[1, 0], [0.8, 0.6]], [0.0, 0.0], k_max=2)
    out = g(torch.tensor([[1.0, 0.0], [0.9, 0.1]]))
    (out.weights[:, 0] * 3 + out.weights[:, 1]).sum().backward()
    assert g.thresholds.grad is not None and g.thresholds.grad.abs().sum() > 0
    assert g.representations.grad is not None and g.representations.grad.abs().sum() > 0


def test_static_top_k_always_selects_k() -> None:
    g = StaticTopKGate(hidden=4, experts=6, k=2)
    out = g(torch.randn(10, 4))
    assert (out.selected.sum(dim=1) == 2).all()


def test_moe_output_is_the_weighted_sum_of_selected_experts() -> None:
    torch.manual_seed(0)
    moe = FaultAdaptiveMoE(hidden=4, experts=3, k_max=3, dropout=0.0)
    moe.eval()
    x = torch.randn(5, 4)
    y = moe(x)
    g = moe.last
    assert g is not None
    expected = sum(g.weights[:, i : i + 1] * moe.experts[i](x) * g.selected[:, i : i + 1] for i in range(3))
    torch.testing.assert_close(y, expected)


def test_moe_add_and_remove_experts() -> None:
    moe = FaultAdaptiveMoE(hidden=4, experts=3, k_max=2)
    moe.remove_experts(torch.tensor([True, False, True]))
    assert moe.n_experts == 2 and moe.gate.representations.shape == (2, 4) and moe.gate.thresholds.shape == (2,)
    moe.add_expert(torch.ones(4))
    assert moe.n_experts == 3 and torch.sigmoid(moe.gate.thresholds[-1]) < 1e-3
    assert moe(torch.randn(7, 4)).shape == (7, 4)
    with pytest.raises(ValueError, match="every expert"):
        moe.remove_experts(torch.zeros(3, dtype=torch.bool))


def test_cmha_chunking_changes_nothing() -> None:
    torch.manual_seed(0)
    full = CrossMultiHeadAttention(hidden=8, heads=2, dropout=0.0, chunk=10_000).eval()
    chunked = CrossMultiHeadAttention(hidden=8, heads=2, dropout=0.0, chunk=7).eval()
    chunked.load_state_dict(full.state_dict())
    q, kv = torch.randn(2, 30, 8), torch.randn(2, 30, 8)
    torch.testing.assert_close(full(q, kv), chunked(q, kv))


def test_cmha_queries_attend_to_the_context() -> None:
    torch.manual_seed(0)
    att = CrossMultiHeadAttention(hidden=8, heads=2, dropout=0.0).eval()
    q, kv = torch.randn(1, 5, 8), torch.randn(1, 5, 8)
    kv2 = kv.clone()
    kv2[0, 3] += 5.0
    assert not torch.allclose(att(q, kv), att(q, kv2))


def test_graph_encoder_passes_messages_only_along_migrations() -> None:
    torch.manual_seed(0)
    enc = ScheduleGraphEncoder(hidden=8, layers=1, heads=2, dropout=0.0).eval()
    x = torch.randn(3, 8)
    x2 = x.clone()
    x2[0] += 3.0  # change host 0
    no_edges = torch.zeros((2, 0), dtype=torch.long)
    # isolated hosts keep their own features: host 2 does not see host 0
    torch.testing.assert_close(enc(x, no_edges)[2], enc(x2, no_edges)[2])
    edge = torch.tensor([[0], [2]])  # a migration 0 -> 2
    assert not torch.allclose(enc(x, edge)[2], enc(x2, edge)[2])


def test_prototype_moving_average() -> None:
    head = ClassificationHead(hidden=4, embedding=2, classes=2, momentum=0.9)
    with torch.no_grad():
        head.prototypes.copy_(torch.tensor([[0.0, 0.0], [1.0, 1.0]]))
    head.update_prototypes(torch.tensor([[1.0, 1.0], [0.0, 0.0]]), torch.tensor([0, -1]))
    torch.testing.assert_close(head.prototypes.data, torch.tensor([[0.1, 0.1], [1.0, 1.0]]))


@pytest.mark.parametrize(("B", "W", "H", "F", "K"), [(1, 1, 1, 3, 1), (3, 4, 16, 16, 3), (2, 6, 40, 5, 5)])
@pytest.mark.parametrize("variant", [{}, {"gate": "topk"}, {"use_cmha": False}, {"use_graph": False}])
def test_model_shapes_any_size(B: int, W: int, H: int, F: int, K: int, variant: dict) -> None:
    model = FTMoE(ModelConfig(features=F, classes=K, window=W, hidden=16, cmha_heads=2, **variant))
    x = torch.randn(B, W, H, F)
    edges = torch.tensor([[0, 1], [1, 0]]) if H > 1 else torch.zeros((2, 0), dtype=torch.long)
    for e in (edges, torch.zeros((2, 0), dtype=torch.long)):
        out = model(x, e)
        assert out.logits.shape == (B, H, 2)
        assert out.embedding.shape == (B, H, 8)
        assert out.type_probability.shape == (B, H, K)
        assert ((out.fault_probability >= 0) & (out.fault_probability <= 1)).all()
