"""DetectionDistiller on tiny detectors: losses, teacher isolation, checks."""
import copy

import pytest
import torch
from mmengine.registry import init_default_scope

import mmkd  # noqa: F401
from helpers.det_models import tiny_detector
from mmkd.models import DetectionDistiller


def _batch(n=2, size=64, seed=0):
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, size, size, generator=g)
    samples = []
    for _ in range(n):
        s = DetDataSample(
            metainfo=dict(
                img_shape=(size, size),
                pad_shape=(size, size),
                batch_input_shape=(size, size),
                scale_factor=(1.0, 1.0)))
        s.gt_instances = InstanceData(
            bboxes=torch.tensor([[4.0, 6.0, 40.0, 44.0], [30, 20, 60, 62]]),
            labels=torch.tensor([1, 4]))
        samples.append(s)
    return x, samples


def _distiller(kind='retinanet', teacher_kind=None, tmp_path=None, **kwargs):
    init_default_scope('mmdet')
    student = tiny_detector(kind, width=8)
    teacher = tiny_detector(teacher_kind or kind, width=16)
    return DetectionDistiller(student=student, teacher=teacher, **kwargs)


def test_teacher_is_frozen_outside_the_module_tree(tmp_path):
    init_default_scope('mmdet')
    from mmdet.registry import MODELS
    teacher = MODELS.build(tiny_detector('retinanet', width=16))
    ckpt = tmp_path / 'teacher.pth'
    torch.save(dict(state_dict=teacher.state_dict(), meta=dict()), ckpt)
    d = _distiller(teacher_ckpt=str(ckpt), teacher_precision='fp32',
                   deep_supervision=dict(stages=[1]))
    d.init_weights()  # what Runner.train() calls
    d.train()
    assert not d.teacher.training
    assert all(not m.training for m in d.teacher.modules())
    for k, v in teacher.state_dict().items():
        assert torch.equal(d.teacher.state_dict()[k], v), k
    teacher_ids = {id(p) for p in d.teacher.parameters()}
    assert not teacher_ids & {id(p) for p in d.parameters()}
    assert not any(k.startswith('teacher') for k in d.state_dict())
    assert all(not p.requires_grad for p in d.teacher.parameters())


def test_dense_losses_and_gradients():
    d = _distiller(deep_supervision=dict(stages=[1, 2]))
    d.train()
    x, samples = _batch()
    losses = d.loss(x, samples)
    assert {'loss_cls', 'loss_bbox'} <= set(losses)
    for lvl in range(5):
        assert f'loss_kd_cls_l{lvl}' in losses
        for i in (0, 1):
            assert f'ds{i}.loss_kd_cls_l{lvl}' in losses
    assert 'ds0.loss_cls' in losses and 'ds1.loss_bbox' in losses
    total = sum(v if torch.is_tensor(v) else sum(v) for v in losses.values())
    total.backward()
    for branch in d.ds_branches:
        assert all(p.grad is not None for p in branch.parameters()
                   if p.requires_grad)
    assert all(p.grad is None for p in d.teacher.parameters())


def test_teacher_never_computes_losses_or_targets(monkeypatch):
    d = _distiller()
    d.train()

    def boom(*args, **kwargs):
        raise AssertionError('teacher loss / target / predict code ran')

    head = d.teacher.bbox_head
    for name in ('loss', 'loss_by_feat', 'get_targets', 'predict',
                 'predict_by_feat'):
        monkeypatch.setattr(head, name, boom)
    monkeypatch.setattr(d.teacher, 'loss', boom)
    monkeypatch.setattr(d.teacher, 'predict', boom)
    x, samples = _batch()
    d.loss(x, samples)


def test_kd_is_zero_when_student_equals_teacher():
    init_default_scope('mmdet')
    cfg = tiny_detector('retinanet', width=8)
    d = DetectionDistiller(student=cfg, teacher=copy.deepcopy(cfg))
    d.teacher.load_state_dict(d.student.state_dict())
    d.student.eval()  # same BN statistics as the eval-mode teacher
    losses = d.loss(*_batch())
    for lvl in range(5):
        assert losses[f'loss_kd_cls_l{lvl}'].abs().item() < 1e-5


@pytest.mark.parametrize('kind', ['fcos', 'gfl', 'faster_rcnn'])
def test_other_detectors(kind):
    distill = dict(cls=dict(type='mmkd.SigmoidKDLoss'))
    if kind == 'gfl':
        distill['box'] = dict(type='mmkd.KDLoss', loss_weight=0.25)
    if kind == 'faster_rcnn':
        distill = dict(cls=dict(type='mmkd.KDLoss'))
    d = _distiller(kind, distill=distill, deep_supervision=dict(stages=[2]))
    d.train()
    losses = d.loss(*_batch())
    if kind == 'faster_rcnn':
        assert 'loss_kd_cls_roi' in losses and 'loss_rpn_cls' in losses
        assert 'ds0.loss_kd_cls_roi' in losses
    else:
        assert 'loss_kd_cls_l0' in losses
    if kind == 'gfl':
        assert 'loss_kd_box_l4' in losses and 'loss_dfl' in losses
    total = sum(v if torch.is_tensor(v) else sum(v) for v in losses.values())
    assert torch.isfinite(total)
    total.backward()
    assert all(p.grad is not None for p in d.ds_branches.parameters())


def test_teacher_inputs_are_renormalised():
    # FCOS's caffe-style preprocessor (BGR, std 1) teaching a torchvision-style
    # student (RGB, std ~58): the teacher must see its own normalisation
    init_default_scope('mmdet')
    student = tiny_detector('fcos', width=8)
    student['data_preprocessor'] = tiny_detector('retinanet')['data_preprocessor']
    d = DetectionDistiller(student=student, teacher=tiny_detector('fcos', 16))
    raw = torch.rand(1, 3, 8, 8) * 255  # BGR, as loaded
    s_pre, t_pre = d.student.data_preprocessor, d.teacher.data_preprocessor
    s_in = (raw.flip(1) - s_pre.mean) / s_pre.std
    t_in = (raw - t_pre.mean) / t_pre.std
    torch.testing.assert_close(d.teacher_inputs(s_in), t_in, rtol=1e-4,
                               atol=1e-3)


@pytest.mark.parametrize('change, what', [
    (lambda t: t.bbox_head.update(num_classes=5), 'class count'),
    (lambda t: t.bbox_head.anchor_generator.update(scales_per_octave=2),
     'priors per location'),
    (lambda t: t.bbox_head.anchor_generator.update(
        strides=[4, 8, 16, 32, 64]), 'strides'),
    (lambda t: (t.neck.update(num_outs=4),
                t.bbox_head.anchor_generator.update(strides=[8, 16, 32, 64])),
     'level count'),
])
def test_incompatible_teacher_is_refused(change, what):
    init_default_scope('mmdet')
    teacher = tiny_detector('retinanet', width=16)
    change(teacher)
    with pytest.raises(ValueError, match=f'differ in {what}: student .*'
                       ', teacher '):
        DetectionDistiller(
            student=tiny_detector('retinanet', width=8), teacher=teacher)


def test_dense_teacher_for_two_stage_student_is_refused():
    init_default_scope('mmdet')
    with pytest.raises(ValueError, match='student is two-stage, teacher is '
                       'dense'):
        DetectionDistiller(
            student=tiny_detector('faster_rcnn'),
            teacher=tiny_detector('retinanet', 16))


def test_bad_teacher_checkpoint_names_file_and_keys(tmp_path):
    ckpt = tmp_path / 'wrong.pth'
    torch.save(dict(state_dict={'backbone.conv1.weight': torch.zeros(1)}),
               ckpt)
    with pytest.raises(ValueError, match='wrong.pth.*missing keys.*'
                       'shape mismatch backbone.conv1.weight'):
        _distiller(teacher_ckpt=str(ckpt))


def test_eval_routes_to_student_or_teacher():
    d = _distiller(teacher_precision='fp32')
    d.eval()
    x, samples = _batch()
    with torch.no_grad():
        out = d(x, samples, mode='tensor')
        ref = d.student(x, samples, mode='tensor')
        torch.testing.assert_close(out[0][0], ref[0][0])
        d.eval_teacher = True  # the config switch for a reference number
        out = d(x, samples, mode='tensor')
        ref = d.teacher(x, samples, mode='tensor')
        torch.testing.assert_close(out[0][0], ref[0][0])


def test_bad_deep_supervision_config_is_refused():
    with pytest.raises(ValueError, match=r'stages: 7 is not a backbone '
                       r'output index; valid: 0\.\.3'):
        _distiller(deep_supervision=dict(stages=[7]))
    with pytest.raises(ValueError, match='1 stage_weights for 2 stages'):
        _distiller(deep_supervision=dict(stages=[1, 2], stage_weights=[1.0]))
