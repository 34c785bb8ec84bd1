"""SegmentationDistiller on query-based segmentors: tiny Mask2Former pairs
(ResNet-18 at 8 / 16 channels, 8 queries, 2 decoder layers, 7 classes,
64x64 images)."""
import copy

import pytest
import torch
import torch.nn.functional as F
from mmengine.registry import init_default_scope

import mmkd  # noqa: F401
from helpers.seg_models import tiny_segmentor
from mmkd.models import SegmentationDistiller
from mmkd.models.distillers.seg_query import semantic_log_probs

NUM_CLASSES = 7
LAYERS = 2  # decoder layers: predictions d0, d1 and the final one
# KD terms from a bf16 teacher vs the same teacher in fp32: measured <= 0.9 %
# relative on these random-init tiny models
BF16_RTOL = 3e-2


def _batch(n=2, size=64, seed=0):
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, size, size, generator=g)
    samples = []
    for _ in range(n):
        s = SegDataSample(metainfo=dict(img_shape=(size, size),
                                        pad_shape=(size, size)))
        seg = torch.randint(0, NUM_CLASSES, (1, size, size), generator=g)
        seg[:, :8] = 255  # ignored rows
        s.gt_sem_seg = PixelData(data=seg)
        samples.append(s)
    return x, samples


def _distiller(student='mask2former', teacher='mask2former',
               teacher_width=16, **kwargs):
    init_default_scope('mmseg')
    kwargs.setdefault('teacher_precision', 'fp32')
    kwargs.setdefault('teacher_channels_last', False)
    return SegmentationDistiller(
        student=tiny_segmentor(student, 8),
        teacher=tiny_segmentor(teacher, teacher_width), **kwargs)


def _layers_ds(**kwargs):
    return dict(stages=list(range(LAYERS)), **kwargs)


def _kd_keys(losses):
    return {k for k in losses if 'loss_kd' in k}


def _total(losses):
    return sum(v for k, v in losses.items() if 'loss' in k)


def _layer_grads(d, loss):
    """Whether ``loss`` reaches each student decoder layer (some non-zero
    gradient in its parameters)."""
    layers = d.student.decode_head.transformer_decoder.layers
    reached = []
    for layer in layers:
        params = list(layer.parameters())
        grads = torch.autograd.grad(loss, params, retain_graph=True,
                                    allow_unused=True)
        reached.append(any(g is not None and g.abs().sum() > 0
                           for g in grads))
    return reached


def test_one_step_kd_at_every_decoder_layer():
    d = _distiller(deep_supervision=_layers_ds())
    assert d.query_student and len(d.ds_heads) == 0
    d.train()
    losses = d.loss(*_batch())
    # the student's own keys (mmdet's d<i> for the intermediate layers) ...
    for key in ('decode.loss_cls', 'decode.loss_mask', 'decode.loss_dice',
                'decode.d0.loss_cls', 'decode.d1.loss_dice'):
        assert key in losses, key
    # ... and KD on the final and on every intermediate prediction
    assert _kd_keys(losses) == {'decode.loss_kd', 'ds0.loss_kd',
                                'ds1.loss_kd'}
    assert all(losses[k] > 0 for k in _kd_keys(losses))
    assert torch.isfinite(_total(losses))
    # the KD terms pair level l with the prediction after l decoder layers:
    # d0 comes before any layer, d1 after the first, the final after both
    assert _layer_grads(d, losses['ds0.loss_kd']) == [False, False]
    assert _layer_grads(d, losses['ds1.loss_kd']) == [True, False]
    assert _layer_grads(d, losses['decode.loss_kd']) == [True, True]
    _total(losses).backward()
    head = d.student.decode_head
    for name, p in head.named_parameters():
        if name.startswith('transformer_decoder.layers'):
            assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert all(p.grad is None for p in d.teacher.parameters())


@pytest.mark.parametrize('loss', ['mmkd.PixelKDLoss',
                                  'mmkd.ChannelWiseDivergence'])
def test_identical_teacher_gives_zero_final_kd(loss):
    d = _distiller(teacher_width=8, distill=dict(logits=dict(type=loss)),
                   deep_supervision=_layers_ds())
    d.teacher.load_state_dict(d.student.state_dict())
    d.eval()  # BN statistics as the teacher's (eval) forward uses them
    losses = d.loss(*_batch())
    assert abs(losses['decode.loss_kd'].item()) < 1e-7
    # the intermediate layers still differ from the final prediction
    assert losses['ds0.loss_kd'] > 1e-6 and losses['ds1.loss_kd'] > 1e-6


def _plain_losses(model, batch, seed=0):
    torch.manual_seed(seed)  # Mask2Former samples points in its loss
    return model.loss(*batch)


@pytest.mark.parametrize('how', ['weight0', 'scale0', 'no_distill'])
def test_no_kd_leaves_the_students_loss_unchanged(how):
    kwargs = dict(deep_supervision=_layers_ds())
    if how == 'weight0':
        kwargs['distill'] = dict(logits=dict(type='mmkd.PixelKDLoss',
                                             loss_weight=0.0))
    elif how == 'no_distill':
        kwargs = dict(distill={})
    d = _distiller(**kwargs)
    if how == 'scale0':
        d.distill_scale = 0.0
    plain = copy.deepcopy(d.student)
    d.train()
    plain.train()
    batch = _batch()
    got = _plain_losses(d, batch)
    want = _plain_losses(plain, batch)
    assert set(want) <= set(got)
    for key, value in want.items():
        assert torch.equal(got[key], value), key
    extra = set(got) - set(want)
    if how == 'weight0':
        assert extra == {'decode.loss_kd', 'ds0.loss_kd', 'ds1.loss_kd'}
        assert all(got[k] == 0 for k in extra)
    else:
        assert extra == set()  # the teacher did not run


def _naive_log_probs(cls, mask):
    """Mask2Former's semantic map as mmseg's predict computes it, normalised
    over the classes (no stabilisation)."""
    p = torch.einsum('bqc,bqhw->bchw', cls.softmax(-1)[..., :-1],
                     mask.sigmoid())
    return (p / p.sum(1, keepdim=True)).log()


def test_kd_terms_by_hand():
    weights = [0.5, 2.0]
    ds = _layers_ds(stage_weights=weights, kd_weight=3.0)
    d = _distiller(deep_supervision=ds)
    d.train()
    x, samples = _batch()
    seen = []
    hook = d.student.decode_head.register_forward_hook(
        lambda m, a, out: seen.append(out))
    losses = d.loss(x, samples)
    hook.remove()
    s_cls, s_mask = seen[0]
    teacher = d.teacher
    with torch.no_grad():
        t_cls, t_mask = teacher.decode_head(teacher.extract_feat(x), samples)
    log_t = _naive_log_probs(t_cls[-1], t_mask[-1])
    labels = torch.stack([s.gt_sem_seg.data for s in samples]).float()
    valid = F.interpolate(labels, size=log_t.shape[-2:],
                          mode='nearest')[:, 0] != 255

    def kl(level):
        log_s = _naive_log_probs(s_cls[level], s_mask[level])
        per_pixel = (log_t.exp() * (log_t - log_s)).sum(1)
        return per_pixel[valid].mean()

    assert valid.sum() < valid.numel()  # some pixels are ignored
    torch.testing.assert_close(losses['decode.loss_kd'], kl(-1))
    for i, w in enumerate(weights):
        torch.testing.assert_close(losses[f'ds{i}.loss_kd'],
                                   w * 3.0 * kl(i))


def test_semantic_map_is_stable_for_confident_masks():
    torch.manual_seed(0)
    # mask logits around -150: probabilities (sigmoid(-150) ~ 1e-65) far
    # below fp32's range, where mmseg's product underflows to 0
    cls = (torch.randn(1, 4, 6) * 10).requires_grad_()
    mask = (torch.randn(1, 4, 5, 5) * 30 - 150).requires_grad_()
    log_p = semantic_log_probs(cls, mask)
    # mmseg's map, normalised, in float64 (where it is representable)
    torch.testing.assert_close(
        log_p, _naive_log_probs(cls.double(), mask.double()).float())
    target = F.softmax(torch.randn(1, 5, 5, 5), dim=1)
    (-(target * log_p).sum()).backward()
    assert torch.isfinite(cls.grad).all() and torch.isfinite(mask.grad).all()
    assert mask.grad.abs().sum() > 0


@pytest.mark.parametrize('student, teacher', [('pspnet', 'mask2former'),
                                              ('mask2former', 'pspnet')])
def test_dense_and_query_heads_mix(student, teacher):
    ds = dict(stages=[1, 2]) if student == 'pspnet' else _layers_ds()
    d = _distiller(student, teacher, deep_supervision=ds)
    d.train()
    losses = d.loss(*_batch())
    assert {'decode.loss_kd', 'ds0.loss_kd', 'ds1.loss_kd'} <= set(losses)
    assert all(losses[k] > 0 for k in _kd_keys(losses))
    total = _total(losses)
    assert torch.isfinite(total)
    total.backward()
    assert all(p.grad is None for p in d.teacher.parameters())


@pytest.mark.parametrize('ds, match', [
    (dict(stages=[2]), r'2 is not an intermediate decoder prediction index; '
     r'valid: 0\.\.1 \(d0, d1\)'),
    (dict(stages=[0], gt_weight=1.0), r'gt_weight is 1\.0, but a '
     r'Mask2FormerHead student trains its decoder layers'),
    (dict(stages=[0], mode='full'), r"\['mode'\] size auxiliary heads"),
])
def test_layer_supervision_options_are_checked(ds, match):
    with pytest.raises(ValueError, match=match):
        _distiller(deep_supervision=ds)


def test_bf16_teacher_matches_fp32(monkeypatch):
    """A bf16 teacher (its pixel decoder's deformable attention, an mmcv
    operator called with keywords, kept in fp32) gives the fp32 teacher's
    KD terms."""
    from mmkd.utils import precision
    monkeypatch.setattr(precision, 'bf16_support', lambda device: 'fast')
    ds = _layers_ds()
    d32 = _distiller(deep_supervision=ds)
    d16 = _distiller(deep_supervision=ds, teacher_precision='bf16',
                     teacher_channels_last=True)
    d16.load_state_dict(d32.state_dict())
    d16.teacher.load_state_dict(d32.teacher.state_dict())
    batch = _batch()
    l32, l16 = (_plain_losses(d, batch) for d in (d32, d16))
    assert d16.teacher_dtype == torch.bfloat16
    for key in _kd_keys(l32):
        assert l16[key].item() == pytest.approx(l32[key].item(), rel=BF16_RTOL)
