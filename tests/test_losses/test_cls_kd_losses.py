"""Classification KD losses (KD, BKD, DKD, DIST) against values computed by
hand from the formulas (docs/method.md), with plain torch ops."""
import math

import pytest
import timm.loss
import torch
from mmengine.registry import MODELS

from mmkd.losses import (BKDLoss, DISTLoss, DKDLoss, KDLoss, bkd_loss,
                         dist_loss, dkd_loss)

S = torch.tensor([[1.0, -0.5, 0.3, 2.0], [0.2, 0.1, -1.0, 0.5],
                  [-0.3, 1.5, 0.7, 0.0]])
T = torch.tensor([[0.5, 0.5, -0.2, 1.0], [1.2, -0.4, 0.3, 0.9],
                  [0.0, 2.0, -0.5, 0.4]])
LABELS = torch.tensor([3, 0, 1])


def _softmax(row, temp=1.0):
    e = [math.exp(v / temp) for v in row]
    return [v / sum(e) for v in e]


# ------------------------------------------------------------------ BKD
def test_bkd_hand_values():
    # p_t = (3/4, 1/4), sigmoid(0) = 1/2: each BCE term is log 2
    s = torch.zeros(1, 2)
    t = torch.tensor([[math.log(3.0), 0.0]])
    assert bkd_loss(s, t).item() == pytest.approx(math.log(2), rel=1e-6)
    # general: mean over B x C of -(q log sig(z) + (1 - q) log(1 - sig(z)))
    terms = []
    for zs, zt in zip(S.tolist(), T.tolist()):
        q = _softmax(zt)
        for z, qc in zip(zs, q):
            sig = 1 / (1 + math.exp(-z))
            terms.append(-(qc * math.log(sig) + (1 - qc) * math.log(1 - sig)))
    expected = sum(terms) / len(terms)
    assert bkd_loss(S, T).item() == pytest.approx(expected, rel=1e-5)
    assert BKDLoss(loss_weight=0.5)(S, T, target=LABELS).item() == \
        pytest.approx(0.5 * expected, rel=1e-5)


# ------------------------------------------------------------------ DKD
def _dkd_by_hand(s, t, labels, alpha, beta, temp):
    total = 0.0
    for zs, zt, g in zip(s.tolist(), t.tolist(), labels):
        ps, pt = _softmax(zs, temp), _softmax(zt, temp)
        # TCKD: binary (target, rest)
        tckd = pt[g] * math.log(pt[g] / ps[g]) + (1 - pt[g]) * math.log(
            (1 - pt[g]) / (1 - ps[g]))
        # NCKD: distributions over the other classes, renormalised
        others = [c for c in range(len(zs)) if c != g]
        qs = [ps[c] / (1 - ps[g]) for c in others]
        qt = [pt[c] / (1 - pt[g]) for c in others]
        nckd = sum(b * math.log(b / a) for a, b in zip(qs, qt))
        total += alpha * tckd + beta * nckd
    return temp**2 * total / len(labels)


def test_dkd_literal_value():
    # p_s = (1/3, 1/3, 1/3), p_t = (1/2, 1/4, 1/4), gt 0: the non-target
    # parts agree (NCKD 0); TCKD = KL((1/2, 1/2) || (1/3, 2/3))
    s = torch.zeros(1, 3)
    t = torch.tensor([[math.log(2.0), 0.0, 0.0]])
    tckd = 0.5 * math.log(1.5) + 0.5 * math.log(0.75)
    assert dkd_loss(s, t, torch.tensor([0])).item() == pytest.approx(
        tckd, rel=1e-5)
    assert dkd_loss(s, t, torch.tensor([0]), alpha=3.0).item() == \
        pytest.approx(3 * tckd, rel=1e-5)


@pytest.mark.parametrize('alpha,beta,temp', [(1.0, 2.0, 1.0), (0.5, 8.0, 4.0),
                                             (1.0, 0.0, 2.0), (0.0, 1.0, 2.0)])
def test_dkd_hand_values(alpha, beta, temp):
    expected = _dkd_by_hand(S, T, LABELS.tolist(), alpha, beta, temp)
    got = dkd_loss(S, T, LABELS, alpha=alpha, beta=beta, temperature=temp)
    assert got.item() == pytest.approx(expected, rel=1e-5)


def test_dkd_soft_targets_use_argmax():
    soft = torch.tensor([[0.1, 0.1, 0.1, 0.7], [0.6, 0.0, 0.4, 0.0],
                         [0.2, 0.45, 0.35, 0.0]])  # argmax = LABELS
    expected = _dkd_by_hand(S, T, LABELS.tolist(), 1.0, 2.0, 1.0)
    assert dkd_loss(S, T, soft).item() == pytest.approx(expected, rel=1e-5)
    module = DKDLoss(loss_weight=2.0)
    assert module(S, T, soft).item() == pytest.approx(2 * expected, rel=1e-5)
    assert module(S, T, target=LABELS).item() == pytest.approx(
        2 * expected, rel=1e-5)
    # another argmax gives another value
    assert dkd_loss(S, T, soft.flip(-1)).item() != pytest.approx(
        expected, rel=1e-3)


def test_dkd_errors():
    with pytest.raises(ValueError, match='needs the ground truth'):
        DKDLoss()(S, T)
    with pytest.raises(ValueError, match=r'target \(2,\).*\(3, 4\)'):
        dkd_loss(S, T, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match=r'\(3, 4\) vs .*\(3, 5\)'):
        dkd_loss(S, torch.zeros(3, 5), LABELS)


# ------------------------------------------------------------------ DIST
def _pearson(a, b):
    return torch.corrcoef(torch.stack([a, b]))[0, 1].item()


def _dist_terms_by_hand(s, t, tau):
    ys, yt = (s / tau).softmax(-1), (t / tau).softmax(-1)
    inter = 1 - sum(_pearson(ys[b], yt[b]) for b in range(len(ys))) / len(ys)
    cols = ys.shape[1]
    intra = 1 - sum(_pearson(ys[:, c], yt[:, c]) for c in range(cols)) / cols
    return inter, intra


@pytest.mark.parametrize('tau', [1.0, 3.0])
def test_dist_inter_and_intra_terms(tau):
    inter, intra = _dist_terms_by_hand(S, T, tau)
    assert inter != pytest.approx(intra, rel=1e-2)  # the terms differ here
    got_inter = dist_loss(S, T, beta=1.0, gamma=0.0, tau=tau)
    got_intra = dist_loss(S, T, beta=0.0, gamma=1.0, tau=tau)
    assert got_inter.item() == pytest.approx(tau**2 * inter, rel=1e-5)
    assert got_intra.item() == pytest.approx(tau**2 * intra, rel=1e-5)
    both = DISTLoss(beta=2.0, gamma=0.5, tau=tau, loss_weight=3.0)(S, T)
    assert both.item() == pytest.approx(
        3.0 * tau**2 * (2.0 * inter + 0.5 * intra), rel=1e-5)


def test_dist_literal_values():
    # identical logits: correlation 1 everywhere, loss 0
    assert dist_loss(S, S.clone()).item() == pytest.approx(0.0, abs=1e-6)
    # rows y_s = (a, b), y_t = (b, a) with a != b: correlation -1 per row
    s = torch.tensor([[math.log(3.0), 0.0]])
    t = torch.tensor([[0.0, math.log(3.0)]])
    assert dist_loss(s, t, beta=1.0, gamma=0.0).item() == pytest.approx(
        2.0, rel=1e-5)


# ------------------------------------------------------------- common
def test_kd_loss_uniform_signature_and_compat():
    from mmkd.losses import kd_loss
    expected = kd_loss(S, T, temperature=2.0)
    kd = KDLoss(temperature=2.0)
    assert kd(S, T, target=LABELS).item() == pytest.approx(expected.item())
    # detection / segmentation call: (student, teacher, weight) positional
    w = torch.tensor([1.0, 0.0, 0.0])
    assert kd(S, T, w).item() == pytest.approx(
        kd_loss(S[:1], T[:1], temperature=2.0).item(), rel=1e-5)


@pytest.mark.parametrize('cfg', [
    dict(type='mmkd.KDLoss', temperature=2.0),
    dict(type='mmkd.BKDLoss'),
    dict(type='mmkd.DKDLoss', temperature=2.0),
    dict(type='mmkd.DISTLoss', tau=2.0),
])
def test_registered_and_gradients(cfg):
    loss_fn = MODELS.build(cfg)
    s = S.clone().requires_grad_(True)
    t = T.clone().requires_grad_(True)
    loss = loss_fn(s, t, target=LABELS)
    assert loss.dim() == 0 and loss.item() > 0
    loss.backward()
    assert s.grad is not None and s.grad.abs().sum() > 0
    assert t.grad is None  # teacher detached
    # zero when the student matches the teacher (BKD: BCE keeps an entropy)
    if cfg['type'] != 'mmkd.BKDLoss':
        assert loss_fn(T, T, target=LABELS).item() == pytest.approx(
            0.0, abs=1e-5)


def test_timm_label_losses_are_registered_not_copied():
    assert MODELS.get('mmkd.TimmBinaryCrossEntropy') is \
        timm.loss.BinaryCrossEntropy
    assert MODELS.get('mmkd.TimmSoftTargetCrossEntropy') is \
        timm.loss.SoftTargetCrossEntropy
    assert MODELS.get('mmkd.TimmLabelSmoothingCrossEntropy') is \
        timm.loss.LabelSmoothingCrossEntropy
