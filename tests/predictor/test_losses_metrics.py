"""Losses and metrics against hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ftmoe.predictor import losses, metrics


def test_triplet_pulls_to_own_prototype_and_ignores_healthy_hosts() -> None:
    protos = torch.tensor([[0.0, 0.0], [1.0, 0.0]])
    z = torch.tensor([[0.1, 0.0], [0.9, 0.0], [5.0, 5.0]])
    cls = torch.tensor([0, 0, -1])
    # host 0: d_pos 0.1, d_neg 0.9 -> 0; host 1: d_pos 0.9, d_neg 0.1 -> 0.9 - 0.1 + 0.5 = 1.3
    assert losses.triplet_loss(z, protos, cls, margin=0.5).item() == pytest.approx(1.3 / 2)
    assert losses.triplet_loss(z, protos, torch.tensor([-1, -1, -1]), 0.5).item() == 0.0


def test_detection_loss_sums_over_hosts() -> None:
    logits = torch.zeros(2, 3, 2)  # p = 0.5 everywhere
    faulty = torch.zeros(2, 3, dtype=torch.bool)
    assert losses.detection_loss(logits, faulty, 1.0).item() == pytest.approx(3 * math.log(2))


def test_expert_selection_loss() -> None:
    s = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
    assert losses.expert_selection_loss(s).item() == pytest.approx(0.25)


def test_detection_metrics() -> None:
    y = np.array([[0, 1, 2], [0, 0, 3]])
    p = np.array([[1, 1, 0], [0, 0, 1]])
    m = metrics.detection(y, p)
    assert (m["tp"], m["fp"], m["fn"]) == (2, 1, 1)
    assert m["precision"] == pytest.approx(2 / 3) and m["recall"] == pytest.approx(2 / 3)
    assert m["accuracy"] == pytest.approx(4 / 6)


def test_typing_metrics() -> None:
    y = np.array([0, 1, 1, 2, 3])
    p = np.array([2, 1, 2, 2, 3])
    m = metrics.typing(y, p, classes=3)
    assert m["type_accuracy"] == pytest.approx(3 / 4)  # the healthy host is ignored
    f1 = [2 / 3, 2 * 1 / (2 + 1), 1.0]  # class 1: tp1 fn1; class 2: tp1 fp1; class 3: tp1
    assert m["type_macro_f1"] == pytest.approx(np.mean(f1))


def test_ranking_by_hand() -> None:
    # one interval, 3 hosts, 2 types; true pairs: (0, type 1) and (2, type 2)
    labels = np.array([[1, 0, 2]])
    fault_prob = np.array([[0.9, 0.8, 0.1]])
    type_prob = np.array([[[0.9, 0.1], [0.6, 0.4], [0.2, 0.8]]])
    # scores: (0,1) .81, (0,2) .09, (1,1) .48, (1,2) .32, (2,1) .02, (2,2) .08
    r = metrics.ranking(labels, fault_prob, type_prob)
    # top-2: (0,1) hit, (1,1) miss -> HR@100 = 1/2; NDCG = (1/log2 2) / (1/log2 2 + 1/log2 3)
    assert r["hr@100"] == pytest.approx(0.5)
    assert r["ndcg@100"] == pytest.approx(1 / (1 + 1 / math.log2(3)))
    # top-3 adds (1,2): still 1 hit
    assert r["hr@150"] == pytest.approx(0.5)


def test_ranking_skips_intervals_without_faults() -> None:
    labels = np.array([[0, 0], [1, 0]])
    r = metrics.ranking(labels, np.array([[0.9, 0.9], [0.9, 0.1]]), np.ones((2, 2, 1)))
    assert r["hr@100"] == 1.0 and r["ndcg@100"] == 1.0


def test_lead_time() -> None:
    ends = np.arange(0, 20)
    alarms = np.zeros((20, 2), dtype=bool)
    alarms[7, 0] = True  # warned at 7 for a fault with onset 10 -> 3 ahead
    alarms[15, 1] = True  # after the onset of a sudden fault at 14 -> -1
    records = [
        {"host": 0, "onset": 10, "end": 12, "precursor_start": 5},
        {"host": 1, "onset": 14, "end": 17, "precursor_start": None},
        {"host": 0, "onset": 18, "end": 19, "precursor_start": 16},  # never warned
    ]
    r = metrics.lead_time(alarms, ends, records, lead=1)
    assert r["faults_scored"] == 3 and r["faults_detected"] == 2
    assert r["mean_lead_intervals"] == pytest.approx((3 + -1) / 2)
