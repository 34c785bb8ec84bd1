"""SegmentationDistiller on tiny segmentors."""
import copy

import pytest
import torch
from mmengine.registry import init_default_scope

import mmkd  # noqa: F401
from helpers.seg_models import tiny_segmentor
from mmkd.models import SegmentationDistiller


def _batch(n=2, size=64, seed=0):
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, size, size, generator=g)
    samples = []
    for _ in range(n):
        s = SegDataSample(metainfo=dict(img_shape=(size, size),
                                        pad_shape=(size, size)))
        seg = torch.randint(0, 7, (1, size, size), generator=g)
        seg[:, :4] = 255
        s.gt_sem_seg = PixelData(data=seg)
        samples.append(s)
    return x, samples


def _distiller(student='pspnet', teacher='pspnet', **kwargs):
    init_default_scope('mmseg')
    return SegmentationDistiller(
        student=tiny_segmentor(student, 8),
        teacher=tiny_segmentor(teacher, 16),
        **kwargs)


def _total(losses):
    return sum(v for k, v in losses.items() if 'loss' in k)


@pytest.mark.parametrize('mode, gt_weight, width', [('light', None, 64),
                                                    ('full', 1.0, 16)])
def test_pixel_kd_and_deep_supervision(mode, gt_weight, width):
    ds = dict(stages=[1, 2], mode=mode)
    if gt_weight is not None:
        ds['gt_weight'] = gt_weight
    d = _distiller(deep_supervision=ds)
    # mode is the heads' size (full: the decode head's width, 2 convs) in
    # every distiller; the label loss is gt_weight's (default 0)
    assert all(h.channels == width for h in d.ds_heads)
    assert all(h.num_convs == (1 if mode == 'light' else 2)
               for h in d.ds_heads)
    label_loss = bool(gt_weight)
    d.train()
    assert not d.teacher.training
    losses = d.loss(*_batch())
    for key in ('decode.loss_ce', 'aux.loss_ce', 'decode.loss_kd',
                'aux.loss_kd', 'ds0.loss_kd', 'ds1.loss_kd'):
        assert key in losses, key
    # KD only by default; the label loss with gt_weight > 0
    assert ('ds0.loss_ce' in losses) == label_loss
    _total(losses).backward()
    for head in d.ds_heads:
        assert all(p.grad is not None for p in head.parameters())
    assert all(p.grad is None for p in d.teacher.parameters())
    assert not any(k.startswith(('teacher', 'student.ds'))
                   for k in d.state_dict())
    assert any(k.startswith('ds_heads') for k in d.state_dict())


def test_cwd_and_heterogeneous_teacher():
    # a SegFormer (MiT) teacher, a ResNet PSPNet student: other backbone,
    # channels and output stride (1/4 vs 1/8)
    d = _distiller(
        teacher='segformer',
        distill=dict(logits=dict(type='mmkd.ChannelWiseDivergence',
                                 loss_weight=3.0)))
    d.train()
    losses = d.loss(*_batch())
    assert torch.isfinite(_total(losses))
    assert losses['decode.loss_kd'] > 0
    _total(losses).backward()


def test_teacher_never_computes_losses(monkeypatch):
    d = _distiller()

    def boom(*args, **kwargs):
        raise AssertionError('teacher loss code ran')

    monkeypatch.setattr(d.teacher, 'loss', boom)
    monkeypatch.setattr(d.teacher.decode_head, 'loss', boom)
    monkeypatch.setattr(d.teacher.decode_head, 'loss_by_feat', boom)
    d.loss(*_batch())


def test_class_count_mismatch_is_refused():
    init_default_scope('mmseg')
    with pytest.raises(ValueError,
                       match='differ in class count: student 7, teacher 5'):
        SegmentationDistiller(
            student=tiny_segmentor('pspnet', 8),
            teacher=tiny_segmentor('pspnet', 16, num_classes=5))


@pytest.mark.parametrize('path, what', [
    ('mmseg::point_rend/pointrend_r50_4xb4-160k_ade20k-512x512.py',
     'PointHead (PointRend'),
    # Mask2Former is supported (tests/test_models/test_query_segmentation.py)
    ('mmseg::maskformer/maskformer_r50-d32_8xb2-160k_ade20k-512x512.py',
     'MaskFormerHead (query-based MaskFormer'),
])
def test_unsupported_segmentors_are_refused_at_build(path, what):
    from mmengine.hub import get_config
    init_default_scope('mmseg')
    model = get_config(path).model
    model.pop('_scope_', None)
    model.backbone.init_cfg = None
    model.pop('pretrained', None)
    with pytest.raises(ValueError) as err:
        SegmentationDistiller(student=model, teacher=copy.deepcopy(model))
    msg = str(err.value)
    assert what in msg and 'not supported' in msg
    for head in ('UPerHead', 'OCRHead', 'SegformerHead', 'Mask2FormerHead'):
        assert head in msg
