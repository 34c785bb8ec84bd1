"""Pixel KD and CWD against values computed by hand."""
import math

import pytest
import torch

from mmkd.losses import (ChannelWiseDivergence, PixelKDLoss, cwd_loss,
                         pixel_kd_loss)

KL0 = 0.75 * math.log(0.75 / 0.5) + 0.25 * math.log(0.25 / 0.5)
L3 = math.log(3.0)


def test_pixel_kd_ignores_ignore_index_pixels():
    s = torch.zeros(1, 2, 1, 2)
    t = torch.tensor([[L3, 0.0], [0.0, 0.0]]).view(1, 2, 1, 2)  # px1: KL 0
    assert pixel_kd_loss(s, t).item() == pytest.approx(KL0 / 2, rel=1e-5)
    keep_px0 = torch.tensor([[[0, 255]]])
    assert pixel_kd_loss(s, t, keep_px0).item() == pytest.approx(KL0,
                                                                 rel=1e-5)
    keep_px1 = torch.tensor([[[255, 3]]])
    assert pixel_kd_loss(s, t, keep_px1).item() == pytest.approx(0.0,
                                                                 abs=1e-6)
    assert PixelKDLoss(loss_weight=2.0)(s, t, keep_px0).item() == \
        pytest.approx(2 * KL0, rel=1e-5)


def test_pixel_kd_resolution_mismatch():
    t_big = torch.tensor([L3, 0.0]).view(1, 2, 1, 1).expand(1, 2, 4, 4)
    s_small = torch.zeros(1, 2, 2, 2)
    assert pixel_kd_loss(s_small, t_big).item() == pytest.approx(KL0,
                                                                 rel=1e-5)
    t_small = torch.tensor([L3, 0.0]).view(1, 2, 1, 1).expand(1, 2, 2, 2)
    s_big = torch.zeros(1, 2, 4, 4, requires_grad=True)
    labels = torch.full((1, 1, 8, 8), 255)
    labels[..., :4, :] = 1  # top half valid, at the input resolution
    loss = pixel_kd_loss(s_big, t_small, labels)
    assert loss.item() == pytest.approx(KL0, rel=1e-5)
    loss.backward()
    grad = s_big.grad.abs().sum(1)[0]
    assert (grad[:2] > 0).all() and (grad[2:] == 0).all()
    with pytest.raises(ValueError, match='student has 2 classes, teacher 3'):
        pixel_kd_loss(s_big, torch.zeros(1, 3, 4, 4))


def test_pixel_kd_temperature():
    s = torch.zeros(1, 2, 1, 1)
    t = torch.tensor([L3, 0.0]).view(1, 2, 1, 1)
    r = math.sqrt(3)
    p = [r / (r + 1), 1 / (r + 1)]
    expected = 4 * sum(a * math.log(a / 0.5) for a in p)
    assert pixel_kd_loss(s, t, temperature=2.0).item() == pytest.approx(
        expected, rel=1e-5)


def test_cwd_hand_values():
    # channel 0: spatial softmax (3/4, 1/4) vs (1/2, 1/2); channel 1 equal
    s = torch.zeros(1, 2, 1, 2)
    t = torch.tensor([[L3, 0.0], [0.0, 0.0]]).view(1, 2, 1, 2)
    assert cwd_loss(s, t).item() == pytest.approx(KL0 / 2, rel=1e-5)
    assert ChannelWiseDivergence(loss_weight=3.0)(s, t).item() == \
        pytest.approx(1.5 * KL0, rel=1e-5)
    # a smaller student map is upsampled to the teacher's
    t4 = t.repeat_interleave(2, dim=-1)  # (1, 2, 1, 4): (L3, L3, 0, 0)
    s2 = torch.zeros(1, 2, 1, 2)
    p = [3 / 8, 3 / 8, 1 / 8, 1 / 8]
    expected = sum(a * math.log(a / 0.25) for a in p) / 2
    assert cwd_loss(s2, t4).item() == pytest.approx(expected, rel=1e-5)
