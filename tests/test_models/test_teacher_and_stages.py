"""The teacher's inputs (padding, eval at teacher_input_size), the one
deep-supervision contract (stage order, duplicates) in all three distillers,
and paired arms (a distiller draws the student's initial weights as the
plain student does)."""
import pytest
import torch
from mmengine.registry import MODELS, DefaultScope, init_default_scope

import mmkd  # noqa: F401
from helpers.cls_models import tiny_classifier
from helpers.det_models import tiny_detector
from helpers.seg_models import tiny_segmentor
from mmkd.models import (ClassificationDistiller, DetectionDistiller,
                         SegmentationDistiller)
from test_detection_distiller import _batch as det_batch


# ------------------------------------------------------------ padding
def test_padding_is_the_teachers_zero():
    """A BGR/caffe teacher under an RGB student: the image is re-normalised,
    while the padding beyond each image's img_shape is 0 for the teacher, as
    its own preprocessor pads (not (s_mean - t_mean) / t_std)."""
    init_default_scope('mmdet')
    student = tiny_detector('fcos', width=8)
    student['data_preprocessor'] = tiny_detector(
        'retinanet')['data_preprocessor']
    d = DetectionDistiller(student=student, teacher=tiny_detector('fcos', 16))
    x, samples = det_batch(size=32)
    samples[0].set_metainfo(dict(img_shape=(20, 24)))  # padded image
    t_in = d.teacher_inputs(x, samples)
    plain = d.teacher_inputs(x)  # no samples: whole batch re-normalised
    assert torch.equal(t_in[0, :, 20:], torch.zeros_like(t_in[0, :, 20:]))
    assert torch.equal(t_in[0, :, :, 24:],
                       torch.zeros_like(t_in[0, :, :, 24:]))
    torch.testing.assert_close(t_in[0, :, :20, :24], plain[0, :, :20, :24])
    torch.testing.assert_close(t_in[1], plain[1])  # not padded
    assert plain[0, :, 20:].abs().sum() > 0  # what the fix changes


def test_eval_teacher_runs_at_teacher_input_size():
    with DefaultScope.overwrite_default_scope('mmkd'):
        d = ClassificationDistiller(
            student=tiny_classifier(width=4),
            teacher=tiny_classifier(width=8), teacher_input_size=48,
            eval_teacher=True, teacher_precision='fp32')
    seen = []
    d.teacher.model.register_forward_hook(
        lambda m, args, out: seen.append(tuple(args[0].shape[-2:])))
    d.eval()
    d(torch.randn(2, 3, 32, 32), None, mode='tensor')
    assert seen == [(48, 48)]


# ------------------------------------------------------------ DS stages
def _det(stages, **ds):
    init_default_scope('mmdet')
    return DetectionDistiller(
        student=tiny_detector('retinanet', width=8),
        teacher=tiny_detector('retinanet', width=16),
        deep_supervision=dict(stages=stages, **ds))


def _seg(stages, **ds):
    init_default_scope('mmseg')
    return SegmentationDistiller(
        student=tiny_segmentor('pspnet', 8),
        teacher=tiny_segmentor('pspnet', 16),
        deep_supervision=dict(stages=stages, **ds))


def _cls(stages, kind='resnet', **ds):
    with DefaultScope.overwrite_default_scope('mmkd'):
        return ClassificationDistiller(
            student=tiny_classifier(kind, width=4),
            teacher=tiny_classifier(kind, width=8),
            deep_supervision=dict(stages=stages, **ds))


@pytest.mark.parametrize('build', [_det, _seg, _cls])
def test_stages_are_sorted_with_their_weights(build):
    d = build([3, 1], stage_weights=[0.3, 0.1])
    assert d.ds.stages == [1, 3] and d.ds.weights == [0.1, 0.3]


@pytest.mark.parametrize('build', [_det, _seg, _cls])
def test_a_stage_listed_twice_is_refused(build):
    with pytest.raises(ValueError, match=r'\[2\] listed more than once'):
        build([2, 2])


def test_classification_heads_follow_network_order():
    """ResNet [3, 1]: each head gets its own stage's features (the layer-1
    head would fail on layer-3 channels), and ViT [11, 5]-style blocks keep
    their weights and log names in network order."""
    d = _cls([3, 1], stage_weights=[0.5, 2.0])
    data = d.data_preprocessor(dict(
        inputs=[torch.randint(0, 256, (3, 32, 32), dtype=torch.uint8)
                for _ in range(2)],
        data_samples=[mmkd_label(i) for i in range(2)]), training=True)
    losses = d.loss(data['inputs'], data['data_samples'])
    assert {'ds0.loss_kd', 'ds1.loss_kd'} <= set(losses)
    v = _cls([3, 1], kind='vit', stage_weights=[0.5, 2.0])
    assert v.ds.stages == [1, 3] and v.ds.weights == [2.0, 0.5]
    feats = {}

    def keep(i, shape):  # hooks must return None
        feats.setdefault(i, shape)

    for i, head in enumerate(v.ds_heads):
        head.register_forward_hook(lambda m, a, o, i=i: keep(i, a[0].shape))
    data = v.data_preprocessor(dict(
        inputs=[torch.randint(0, 256, (3, 32, 32), dtype=torch.uint8)
                for _ in range(2)],
        data_samples=[mmkd_label(i) for i in range(2)]), training=True)
    losses = v.loss(data['inputs'], data['data_samples'])
    assert set(feats) == {0, 1}
    # weights follow their stage: ds0 is stage 1 with weight 2.0
    with torch.no_grad():
        t = v.teacher_logits(data['inputs'])
        final, inter = v.student.model.forward_intermediates(
            data['inputs'], indices=[1, 3])
        h0 = v.ds_heads[0](inter[0])
    assert losses['ds0.loss_kd'].item() == pytest.approx(
        2.0 * v.kd_loss(h0, t).item(), rel=1e-5)


def mmkd_label(i):
    from mmengine.structures import BaseDataElement
    return BaseDataElement(gt_label=torch.tensor([i % 6]))


# ------------------------------------------------------------ paired arms
@pytest.mark.parametrize('task', ['det', 'seg'])
def test_distiller_draws_the_students_initial_weights_as_plain(task):
    """For a given seed the distiller's student gets exactly the initial
    weights the plain student gets: building the teacher and the auxiliary
    heads does not shift the student's random stream."""
    scope = dict(det='mmdet', seg='mmseg')[task]
    init_default_scope(scope)
    student = tiny_detector('retinanet', width=8) if task == 'det' \
        else tiny_segmentor('pspnet', 8)
    teacher = tiny_detector('retinanet', width=16) if task == 'det' \
        else tiny_segmentor('pspnet', 16)
    torch.manual_seed(3)
    with DefaultScope.overwrite_default_scope(scope):
        plain = MODELS.build(student)
    plain.init_weights()
    torch.manual_seed(3)
    cls = DetectionDistiller if task == 'det' else SegmentationDistiller
    d = cls(student=student, teacher=teacher,
            deep_supervision=dict(stages=[1, 2]))
    d.init_weights()
    for k, v in plain.state_dict().items():
        assert torch.equal(d.student.state_dict()[k], v), k
