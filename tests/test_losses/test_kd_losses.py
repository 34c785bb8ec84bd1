"""KD losses against values computed by hand."""
import math

import pytest
import torch

from mmkd.losses import KDLoss, SigmoidKDLoss, kd_loss, sigmoid_kd_loss


def _kl(p, q):
    return sum(a * math.log(a / b) for a, b in zip(p, q))


def test_kd_loss_hand_values():
    s = torch.tensor([[0.0, 0.0]])
    t = torch.tensor([[math.log(3.0), 0.0]])
    # T = 1: p_t = (3/4, 1/4), p_s = (1/2, 1/2)
    assert kd_loss(s, t).item() == pytest.approx(
        _kl([0.75, 0.25], [0.5, 0.5]), rel=1e-6)
    # T = 2: p_t = (sqrt3, 1) / (sqrt3 + 1), times T^2
    r = math.sqrt(3)
    expected = 4 * _kl([r / (r + 1), 1 / (r + 1)], [0.5, 0.5])
    assert kd_loss(s, t, temperature=2.0).item() == pytest.approx(
        expected, rel=1e-6)


def test_kd_loss_is_batch_mean_and_zero_at_match():
    t = torch.randn(4, 10)
    assert kd_loss(t.clone(), t).item() == pytest.approx(0.0, abs=1e-6)
    s = torch.randn(4, 10)
    per_row = [kd_loss(s[i:i + 1], t[i:i + 1]).item() for i in range(4)]
    assert kd_loss(s, t).item() == pytest.approx(sum(per_row) / 4, rel=1e-5)
    # class dim elsewhere (dense maps): same numbers
    s4, t4 = s.T[None, :, :, None], t.T[None, :, :, None]  # (1, C, 4, 1)
    assert kd_loss(s4, t4, dim=1).item() == pytest.approx(
        kd_loss(s, t).item(), rel=1e-5)


def test_kd_loss_weighted_mean():
    s = torch.tensor([[0.0, 0.0], [1.0, 2.0]])
    t = torch.tensor([[math.log(3.0), 0.0], [1.0, 2.0]])  # row 2: KL 0
    w = torch.tensor([2.0, 6.0])
    expected = 2 * _kl([0.75, 0.25], [0.5, 0.5]) / 8
    assert kd_loss(s, t, weight=w).item() == pytest.approx(expected, rel=1e-5)


def test_kd_teacher_gets_no_gradient():
    s = torch.randn(2, 5, requires_grad=True)
    t = torch.randn(2, 5, requires_grad=True)
    KDLoss(loss_weight=2.0)(s, t).backward()
    assert s.grad is not None and t.grad is None


def test_sigmoid_kd_hand_values():
    s = torch.tensor([[0.0, 0.0]])
    t = torch.tensor([[math.log(3.0), -math.log(3.0)]])
    # class 0: q=3/4 vs p=1/2; class 1: q=1/4 vs p=1/2; summed over classes
    one = _kl([0.75, 0.25], [0.5, 0.5])
    assert sigmoid_kd_loss(s, t).item() == pytest.approx(2 * one, rel=1e-5)
    # weighted mean over locations
    s2 = torch.cat([s, t])  # second location matches the teacher: KL 0
    t2 = torch.cat([t, t])
    w = torch.tensor([1.0, 3.0])
    assert sigmoid_kd_loss(s2, t2, weight=w).item() == pytest.approx(
        2 * one / 4, rel=1e-5)
    assert SigmoidKDLoss(loss_weight=0.5)(s2, t2).item() == pytest.approx(
        0.5 * one, rel=1e-5)
