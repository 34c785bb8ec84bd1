"""Correctness of the distillers' terms: auxiliary-head initialisation, LD on
GFL boxes, weighted means, two-stage limits, norms, ignore index, channel
order, stopped distillation and non-finite losses."""
import math

import pytest
import torch
import torch.nn as nn
from mmengine.registry import init_default_scope

import mmkd  # noqa: F401
from helpers.det_models import tiny_detector
from helpers.seg_models import tiny_segmentor
from mmkd.losses import kd_loss
from mmkd.models import DetectionDistiller, SegmentationDistiller
from mmkd.models.distillers.detection import dense
from test_classification_distiller import batch as cls_batch
from test_classification_distiller import build as cls_build
from test_detection_distiller import _batch as det_batch
from test_segmentation_distiller import _batch as seg_batch


def _det(kind='retinanet', **kwargs):
    init_default_scope('mmdet')
    return DetectionDistiller(
        student=tiny_detector(kind, 8), teacher=tiny_detector(kind, 16),
        **kwargs)


def _total(losses):
    return sum(v if torch.is_tensor(v) else sum(v)
               for k, v in losses.items() if 'loss' in k)


# ------------------------------------------------------------ init
def test_auxiliary_detection_heads_are_initialised_like_the_student_head():
    d = _det(deep_supervision=dict(stages=[1, 2]))
    before = {k: v.clone() for k, v in d.teacher.state_dict().items()}
    d.init_weights()
    prior = -math.log((1 - 0.01) / 0.01)  # RetinaHead's bias_prob=0.01
    torch.testing.assert_close(d.student.bbox_head.retina_cls.bias,
                               torch.full_like(
                                   d.student.bbox_head.retina_cls.bias,
                                   prior))
    for branch in d.ds_branches:
        cls = branch['head'].retina_cls
        torch.testing.assert_close(cls.bias, torch.full_like(cls.bias, prior))
        assert cls.weight.std() < 0.02  # normal(std=0.01), not torch's init
    for k, v in d.teacher.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_auxiliary_segmentation_heads_are_initialised_like_mmseg():
    init_default_scope('mmseg')
    d = SegmentationDistiller(
        student=tiny_segmentor('pspnet', 8),
        teacher=tiny_segmentor('pspnet', 16),
        deep_supervision=dict(stages=[1, 2]))
    for head in d.ds_heads:
        nn.init.constant_(head.conv_seg.bias, 1.0)
    d.init_weights()
    for head in d.ds_heads:
        assert head.conv_seg.weight.std() < 0.02  # normal(std=0.01)
        assert torch.all(head.conv_seg.bias == 0)


def test_auxiliary_classifier_heads_are_initialised_like_timm():
    d = cls_build(deep_supervision=dict(stages=[1, 2]))
    for head in d.ds_heads:
        nn.init.constant_(head.fc.bias, 1.0)
    d.init_weights()
    for head in d.ds_heads:
        assert torch.all(head.fc.bias == 0)
        assert 0.01 < head.fc.weight.std() < 0.03  # trunc_normal(std=0.02)


# ------------------------------------------------------------ light heads
def test_light_deep_supervision_is_the_default_and_full_is_reachable():
    light = _det(deep_supervision=dict(stages=[1]))
    full = _det(deep_supervision=dict(stages=[1], mode='full'))
    lh, fh = light.ds_branches[0]['head'], full.ds_branches[0]['head']
    assert lh.stacked_convs == 1 and lh.feat_channels == 64
    assert fh.stacked_convs == full.student.bbox_head.stacked_convs
    assert fh.in_channels == full.student.bbox_head.in_channels
    # a head config that leaves stacked_convs to the class default (FCOS)
    init_default_scope('mmdet')
    fcos = tiny_detector('fcos', 8)
    fcos.bbox_head.pop('stacked_convs')
    d = DetectionDistiller(student=fcos, teacher=tiny_detector('fcos', 16),
                           deep_supervision=dict(stages=[1]))
    assert d.student.bbox_head.stacked_convs == 4
    assert d.ds_branches[0]['head'].stacked_convs == 1
    with pytest.raises(ValueError,
                       match=r"mode must be one of \('light', 'full'\)"):
        _det(deep_supervision=dict(stages=[1], mode='heavy'))
    with pytest.raises(ValueError, match='gt_weight=0 leaves the box '
                       'branches'):
        _det(deep_supervision=dict(stages=[1], gt_weight=0))


# ------------------------------------------------------------ weighted mean
def test_weighted_mean_with_small_weights():
    g = torch.Generator().manual_seed(0)
    s, t = torch.randn(4, 5, generator=g), torch.randn(4, 5, generator=g)
    plain = kd_loss(s, t)
    small = kd_loss(s, t, weight=torch.full((4, ), 0.1))
    torch.testing.assert_close(small, plain)
    w = torch.tensor([0.1, 0.0, 0.3, 0.0])
    kl = kd_loss(s, t, weight=torch.tensor([1., 0, 0, 0])) * 0.1 + \
        kd_loss(s, t, weight=torch.tensor([0., 0, 1, 0])) * 0.3
    torch.testing.assert_close(kd_loss(s, t, weight=w), kl / 0.4)
    zero = kd_loss(s.requires_grad_(), t, weight=torch.zeros(4))
    assert zero.item() == 0
    zero.backward()  # still part of the graph


# ------------------------------------------------------------ LD on GFL
def test_box_kd_is_lds_formulation_on_few_positives():
    """Hand computation: 3 positives among 2 x 8 x 8 locations; the
    negatives' box distributions must not matter."""
    head = type('Head', (), dict(reg_max=4, cls_out_channels=3))()
    bins = head.reg_max + 1
    g = torch.Generator().manual_seed(0)
    s_box = torch.randn(2, 4 * bins, 8, 8, generator=g)
    t_box = torch.randn(2, 4 * bins, 8, 8, generator=g)
    s_cls = torch.randn(2, 3, 8, 8, generator=g)
    pos = torch.zeros(2 * 8 * 8, dtype=torch.bool)
    pos[[3, 70, 100]] = True
    T, weight = 10.0, 0.25
    loss = mmkd.losses.KDLoss(temperature=T, loss_weight=weight,
                              class_reduction='mean')
    got = dense.box_kd(loss, s_box, t_box, s_cls, pos, head)

    expected = 0.0
    for idx in (3, 70, 100):
        b, rest = divmod(idx, 64)
        y, x = divmod(rest, 8)
        w = s_cls[b, :, y, x].sigmoid().max()
        for side in range(4):
            zs = s_box[b, side * bins:(side + 1) * bins, y, x] / T
            zt = t_box[b, side * bins:(side + 1) * bins, y, x] / T
            pt = zt.softmax(0)
            kl = (pt * (pt.log() - zs.log_softmax(0))).mean()  # over bins
            expected += w * kl * T**2
    expected = weight * expected / 4  # LDHead: avg_factor=4.0
    torch.testing.assert_close(got, expected)

    t_neg = t_box.clone()
    t_neg[0, :, 0, 0] += 5  # location 0 is a negative
    torch.testing.assert_close(
        dense.box_kd(loss, s_box, t_neg, s_cls, pos, head),
        got)


def test_gfl_box_kd_uses_the_students_positives():
    d = _det('gfl', distill=dict(
        cls=dict(type='mmkd.SigmoidKDLoss'),
        box=dict(type='mmkd.KDLoss', temperature=10, loss_weight=0.25,
                 class_reduction='mean')))
    d.train()
    x, samples = det_batch()
    losses = d.loss(x, samples)
    box = [losses[f'loss_kd_box_l{lvl}'] for lvl in range(5)]
    assert any(v > 0 for v in box)
    _total(losses).backward()


# ------------------------------------------------------------ two-stage
def test_two_stage_limits_are_refused_at_build_time():
    with pytest.raises(ValueError, match='two-stage detectors support '
                       r'distill.cls \(RoI logits\) only'):
        _det('faster_rcnn', distill=dict(cls=dict(type='mmkd.KDLoss'),
                                         box=dict(type='mmkd.KDLoss')))
    with pytest.raises(ValueError, match='needs distill.cls'):
        _det('faster_rcnn', distill={}, deep_supervision=dict(stages=[2]))
    with pytest.raises(ValueError, match='RoIs, which have no FPN levels'):
        _det('faster_rcnn', distill=dict(cls=dict(type='mmkd.KDLoss',
                                                  levels=[0])))


def test_kd_levels_are_validated():
    with pytest.raises(ValueError, match=r'levels: \[5\] are not all FPN '
                       r'levels of the student \(0\.\.4\)'):
        _det(distill=dict(cls=dict(type='mmkd.SigmoidKDLoss', levels=[5])))
    d = _det(distill=dict(cls=dict(type='mmkd.SigmoidKDLoss', levels=[0, 2])))
    losses = d.loss(*det_batch())
    assert {k for k in losses if 'kd' in k} == {'loss_kd_cls_l0',
                                                 'loss_kd_cls_l2'}


# ------------------------------------------------------------ norms
def test_pyramid_takes_the_students_norm():
    gn = _det('fcos', deep_supervision=dict(stages=[1]))
    assert isinstance(gn.ds_branches[0]['neck'].lateral.norm, nn.GroupNorm)
    bn = _det('retinanet', deep_supervision=dict(stages=[1]))
    assert isinstance(bn.ds_branches[0]['neck'].lateral.norm,
                      nn.BatchNorm2d)


# ------------------------------------------------------------ segmentation
def test_segmentation_kd_uses_the_students_ignore_index():
    init_default_scope('mmseg')
    student = tiny_segmentor('pspnet', 8)
    student.decode_head.ignore_index = 5
    d = SegmentationDistiller(student=student,
                              teacher=tiny_segmentor('pspnet', 16))
    assert d.kd_loss.ignore_index == 5
    d.eval()  # no dropout: the same logits twice
    x, samples = seg_batch()
    for s in samples:  # a dataset whose ignore label is 5
        seg = s.gt_sem_seg.data
        seg[seg == 255] = 5
        seg[:, 20:40] = 5
    got = d.loss(x, samples)['decode.loss_kd']
    with torch.no_grad():
        s_logits = d.student.decode_head(d.student.extract_feat(x))
        t_logits = d.teacher_forward(
            lambda y: d.teacher.decode_head(d.teacher.extract_feat(y)), x)
    labels = torch.stack([s.gt_sem_seg.data for s in samples])
    from mmkd.losses import pixel_kd_loss
    torch.testing.assert_close(
        got, pixel_kd_loss(s_logits, t_logits, labels, ignore_index=5))
    assert not torch.allclose(
        got, pixel_kd_loss(s_logits, t_logits, labels, ignore_index=255))
    with pytest.raises(ValueError, match='ignore_index is 255, but the '
                       'student decode head ignores label 5'):
        SegmentationDistiller(
            student=student, teacher=tiny_segmentor('pspnet', 16),
            distill=dict(logits=dict(type='mmkd.PixelKDLoss',
                                     ignore_index=255)))


# ------------------------------------------------------------ channel order
@pytest.mark.parametrize('scope', ['mmdet', 'mmseg'])
def test_bgr_teacher_with_rgb_student_is_detected(scope):
    init_default_scope(scope)
    if scope == 'mmdet':
        student, teacher = tiny_detector('retinanet', 8), \
            tiny_detector('retinanet', 16)
        build = DetectionDistiller
    else:
        student, teacher = tiny_segmentor('pspnet', 8), \
            tiny_segmentor('pspnet', 16)
        build = SegmentationDistiller
    student.data_preprocessor.update(bgr_to_rgb=True)
    teacher.data_preprocessor.update(bgr_to_rgb=False)
    d = build(student=student, teacher=teacher)
    raw = torch.rand(1, 3, 4, 4) * 255  # BGR, as loaded
    pre_s, pre_t = d.student.data_preprocessor, d.teacher.data_preprocessor
    s_in = (raw.flip(1) - pre_s.mean) / pre_s.std
    t_in = (raw - pre_t.mean) / pre_t.std
    torch.testing.assert_close(d.teacher_inputs(s_in), t_in)


# ------------------------------------------------------------ stop / ds arm
def _no_teacher(monkeypatch, d):
    def boom(*args, **kwargs):
        raise AssertionError('the teacher ran')
    monkeypatch.setattr(d, 'teacher_forward', boom)


@pytest.mark.parametrize('kind', ['retinanet', 'faster_rcnn'])
def test_stopped_distillation_skips_the_teacher(monkeypatch, kind):
    distill = dict(cls=dict(type='mmkd.KDLoss' if kind == 'faster_rcnn'
                            else 'mmkd.SigmoidKDLoss'))
    d = _det(kind, distill=distill, deep_supervision=dict(stages=[2]))
    d.train()
    d.distill_scale = 0.0  # what DistillWeightHook(stop=...) sets
    _no_teacher(monkeypatch, d)
    losses = d.loss(*det_batch())
    assert not any('loss_kd' in k for k in losses)
    _total(losses).backward()
    # every parameter still gets a gradient (DDP without unused parameters)
    assert all(p.grad is not None for p in d.ds_branches.parameters())


def test_label_only_deep_supervision_never_runs_the_teacher(monkeypatch):
    """The study's ``ds`` arm: auxiliary heads on labels, no teacher."""
    d = _det(distill={}, deep_supervision=dict(stages=[1, 2]))
    assert not d.uses_teacher
    _no_teacher(monkeypatch, d)
    losses = d.loss(*det_batch())
    assert 'ds0.loss_cls' in losses and not any('kd' in k for k in losses)

    init_default_scope('mmseg')
    s = SegmentationDistiller(
        student=tiny_segmentor('pspnet', 8),
        teacher=tiny_segmentor('pspnet', 16), distill={},
        deep_supervision=dict(stages=[1], gt_weight=1.0, kd_weight=0.0))
    _no_teacher(monkeypatch, s)
    losses = s.loss(*seg_batch())
    assert 'ds0.loss_ce' in losses and not any('kd' in k for k in losses)

    c = cls_build(distill={}, deep_supervision=dict(
        stages=[1], gt_weight=1.0, kd_weight=0.0))
    _no_teacher(monkeypatch, c)
    data = c.data_preprocessor(cls_batch(), True)
    losses = c.loss(data['inputs'], data['data_samples'])
    assert any(k.startswith('ds0.loss') for k in losses)
    assert not any('kd' in k for k in losses)
    with pytest.raises(ValueError, match='no gradient'):
        cls_build(distill={}, deep_supervision=dict(stages=[1]))


# ------------------------------------------------------------ non-finite
def test_non_finite_term_stops_with_its_name_and_iteration():
    from mmengine.logging import MessageHub
    d = _det()
    MessageHub.get_current_instance().update_info('iter', 41)
    losses = dict(loss_cls=torch.tensor(1.0),
                  loss_kd_cls_l2=torch.tensor(float('nan')),
                  loss_bbox=[torch.tensor(0.5), torch.tensor(float('inf'))])
    with pytest.raises(FloatingPointError,
                       match=r'iteration 42: loss_kd_cls_l2 = nan, '
                       r'loss_bbox = inf'):
        d.parse_losses(losses)
    total, log = d.parse_losses(dict(loss_cls=torch.tensor(1.0)))
    assert total.item() == 1.0
