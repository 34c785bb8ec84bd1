"""The fused sigmoid-KD kernel against the reference formula."""
import pytest
import torch

from mmkd.losses import SigmoidKDLoss, sigmoid_kd_loss


def _reference(s, t, temperature=1.0, weight=None):
    """Binary KL written out from the probabilities, classes last."""
    p = torch.sigmoid(s / temperature)
    q = torch.sigmoid(t / temperature)
    kl = (q * (q.log() - p.log()) +
          (1 - q) * ((1 - q).log() - (1 - p).log())).sum(-1)
    if weight is None:
        return kl.mean() * temperature**2
    return (kl * weight).sum() / weight.sum() * temperature**2


def _rows(x, channels):
    """(B, A*C, H, W) -> (B*H*W*A, C): the permute + reshape the kernel
    avoids."""
    return x.permute(0, 2, 3, 1).reshape(-1, channels)


@pytest.mark.parametrize('temperature', [1.0, 2.5])
def test_rows_forward_and_gradcheck(temperature):
    g = torch.Generator().manual_seed(0)
    s = torch.randn(12, 5, generator=g, dtype=torch.float64,
                    requires_grad=True)
    t = 3 * torch.randn(12, 5, generator=g, dtype=torch.float64)
    w = torch.rand(12, generator=g, dtype=torch.float64)
    for weight in (None, w):
        assert sigmoid_kd_loss(s, t, temperature, weight).item() == \
            pytest.approx(_reference(s, t, temperature, weight).item(),
                          rel=1e-10)
        assert torch.autograd.gradcheck(
            lambda x, weight=weight: sigmoid_kd_loss(x, t, temperature,
                                                     weight), (s, ))


def test_map_layout_matches_rows_and_gradcheck():
    b, a, c, h, w = 2, 3, 4, 3, 5
    g = torch.Generator().manual_seed(1)
    s = torch.randn(b, a * c, h, w, generator=g, dtype=torch.float64,
                    requires_grad=True)
    t = torch.randn(b, a * c, h, w, generator=g, dtype=torch.float64)
    weight = torch.rand(b, a, h, w, generator=g, dtype=torch.float64)
    # a location = one anchor at one position: rows are (B, H, W, A)
    w_rows = weight.permute(0, 2, 3, 1).reshape(-1)
    for wt, wr in ((None, None), (weight, w_rows)):
        got = sigmoid_kd_loss(s, t, 2.0, wt, channels=c)
        ref = _reference(_rows(s, c), _rows(t, c), 2.0, wr)
        assert got.item() == pytest.approx(ref.item(), rel=1e-10)
        assert torch.autograd.gradcheck(
            lambda x, wt=wt: sigmoid_kd_loss(x, t, 2.0, wt, channels=c),
            (s, ))
    # a channels-last teacher map (as a channels-last teacher returns it)
    t_cl = t.contiguous(memory_format=torch.channels_last)
    assert sigmoid_kd_loss(s, t_cl, channels=c).item() == pytest.approx(
        sigmoid_kd_loss(s, t, channels=c).item(), rel=1e-12)
    # module form, same signature
    assert SigmoidKDLoss(loss_weight=2.0)(s, t, channels=c).item() == \
        pytest.approx(2 * sigmoid_kd_loss(s, t, channels=c).item())


def test_small_weights_give_the_weighted_mean():
    g = torch.Generator().manual_seed(2)
    s = torch.randn(4, 3, generator=g, dtype=torch.float64)
    t = torch.randn(4, 3, generator=g, dtype=torch.float64)
    w = torch.full((4, ), 0.1, dtype=torch.float64)
    # equal weights: the weighted mean is the plain mean, whatever their sum
    assert sigmoid_kd_loss(s, t, weight=w).item() == pytest.approx(
        sigmoid_kd_loss(s, t).item(), rel=1e-12)
    assert sigmoid_kd_loss(s, t, weight=w).item() == pytest.approx(
        _reference(s, t, weight=w).item(), rel=1e-12)


def test_all_zero_weight_is_zero_with_a_gradient():
    s = torch.randn(4, 3, requires_grad=True)
    loss = sigmoid_kd_loss(s, torch.randn(4, 3), weight=torch.zeros(4))
    assert loss.item() == 0.0 and loss.requires_grad
    loss.backward()
    assert torch.equal(s.grad, torch.zeros_like(s))


def test_large_logits_are_finite_and_teacher_gets_no_grad():
    s = torch.tensor([[1000., -1000., 50.]], requires_grad=True)
    t = torch.tensor([[-1000., 1000., 50.]], requires_grad=True)
    loss = sigmoid_kd_loss(s, t)
    loss.backward()
    # classes 0 and 1: q = 0 vs p = 1 (and back): KL = softplus(1000) =
    # 1000 each; class 2 matches: 0
    assert loss.item() == pytest.approx(2000.0)
    assert torch.equal(s.grad, torch.tensor([[1., -1., 0.]]))
    assert t.grad is None


def test_half_precision_maps_sum_in_fp32():
    g = torch.Generator().manual_seed(3)
    s = torch.randn(2, 8, 6, 6, generator=g)
    t = torch.randn(2, 8, 6, 6, generator=g)
    got = sigmoid_kd_loss(s.bfloat16(), t.bfloat16(), channels=4)
    assert got.dtype == torch.float32
    ref = sigmoid_kd_loss(s.bfloat16().float(), t.bfloat16().float(),
                          channels=4)
    assert got.item() == pytest.approx(ref.item(), rel=1e-6)


@pytest.mark.parametrize('kwargs, match', [
    (dict(shape_t=(2, 12, 3, 3)), 'teacher shape'),
    (dict(channels=5), 'channels=5 does not divide'),
    (dict(weight=(2, 3, 3)), r'weight shape \(2, 3, 3\)'),
])
def test_bad_input_names_both_values(kwargs, match):
    s = torch.randn(2, 8, 3, 3)
    t = torch.randn(*kwargs.get('shape_t', (2, 8, 3, 3)))
    weight = torch.rand(*kwargs['weight']) if 'weight' in kwargs else None
    with pytest.raises(ValueError, match=match):
        sigmoid_kd_loss(s, t, weight=weight,
                        channels=kwargs.get('channels', 4))
