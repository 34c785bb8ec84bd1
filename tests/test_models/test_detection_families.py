"""The detection families on tiny models: each trains one step through the
student's own loss(), its KD term equals a hand computation from the
student's and teacher's head outputs, mmdet's hooks reach the student, and
unsupported families are refused at build with the supported list."""
import copy
import types

import pytest
import torch
import torch.nn.functional as F
from mmengine.logging import MessageHub
from mmengine.registry import init_default_scope

import mmkd  # noqa: F401
from helpers.det_models import tiny_detector
from mmkd.models import DetectionDistiller
from test_detection_distiller import _batch


def _build(kind, **kwargs):
    init_default_scope('mmdet')
    torch.manual_seed(0)
    return DetectionDistiller(
        student=tiny_detector(kind, width=8),
        teacher=tiny_detector(kind, width=16),
        teacher_precision='fp32', **kwargs)


def _with_epoch(epoch=0):
    """TOOD reads the epoch from mmengine's message hub, as in a run."""
    MessageHub.get_current_instance().update_info('epoch', epoch)


def _head_outputs(d, x, samples):
    """The student head's outputs inside ``d.loss`` and the losses."""
    seen = []
    handle = d.student.bbox_head.register_forward_hook(
        lambda m, a, out: seen.append(out))
    try:
        losses = d.loss(x, samples)
    finally:
        handle.remove()
    t = d.teacher
    t_outs = d.teacher_forward(lambda y: t.bbox_head(t.extract_feat(y)), x)
    return losses, seen[0], t_outs


def _binary_kl(p_s: torch.Tensor, p_t: torch.Tensor) -> torch.Tensor:
    """Per element KL(Bern(p_t) || Bern(p_s)), float64."""
    p_s, p_t = p_s.double(), p_t.double()
    return p_t * (p_t.log() - p_s.log()) + \
        (1 - p_t) * ((1 - p_t).log() - (1 - p_s).log())


def _hand_sigmoid_kd(p_s: torch.Tensor, p_t: torch.Tensor,
                     classes: int) -> torch.Tensor:
    """Mean over locations (B x H x W x priors) of the per-class KL sum."""
    kl = _binary_kl(p_s, p_t)  # (B, A*C, H, W)
    b, ac, h, w = kl.shape
    return kl.sum() / (b * h * w * (ac // classes))


@pytest.mark.parametrize('kind', ['atss', 'rtmdet', 'tood', 'yolox'])
def test_dense_family_one_step_and_hand_kd(kind):
    """One step with deep supervision: task losses from the student's own
    loss(), KD and ds terms finite and non-zero, and loss_kd_cls_l0 equal
    to the binary KL of the scores the family ranks boxes by."""
    _with_epoch(0)
    d = _build(kind, deep_supervision=dict(stages=[1]))
    d.train()
    x, samples = _batch()
    losses, s_outs, t_outs = _head_outputs(d, x, samples)
    kd = {k: v for k, v in losses.items() if 'loss_kd' in k}
    assert kd and all(torch.isfinite(v) and v > 0 for v in kd.values())
    assert any(k.startswith('ds0.loss_kd') for k in kd)
    assert any(k.startswith('ds0.loss_') and 'kd' not in k for k in losses)

    head = d.student.bbox_head
    c = head.cls_out_channels
    if kind == 'yolox':  # class x objectness, YOLOX's score
        p_s = s_outs[0][0].sigmoid() * s_outs[2][0].sigmoid()
        p_t = t_outs[0][0].sigmoid() * t_outs[2][0].sigmoid()
    elif kind == 'tood':  # the head's outputs are probabilities already
        p_s, p_t = s_outs[0][0], t_outs[0][0]
    else:
        p_s, p_t = s_outs[0][0].sigmoid(), t_outs[0][0].sigmoid()
    expected = _hand_sigmoid_kd(p_s.detach(), p_t, c)
    torch.testing.assert_close(losses['loss_kd_cls_l0'].double(), expected,
                               rtol=1e-4, atol=1e-6)
    total = sum(v if torch.is_tensor(v) else sum(v)
                for k, v in losses.items() if 'loss' in k)
    total.backward()
    assert all(p.grad is not None for p in d.ds_branches.parameters())


def test_yolox_kd_reaches_class_and_objectness():
    d = _build('yolox')
    d.train()
    x, samples = _batch()
    losses = d.loss(x, samples)
    sum(v for k, v in losses.items() if 'loss_kd' in k).backward()
    head = d.student.bbox_head
    for convs in (head.multi_level_conv_cls, head.multi_level_conv_obj):
        assert all(m.weight.grad is not None and m.weight.grad.abs().sum() > 0
                   for m in convs)


@pytest.mark.parametrize('kind', ['cascade_rcnn', 'htc'])
def test_cascade_kd_at_every_stage_by_hand(kind):
    """Stage k: the teacher's stage-k box head on the student's stage-k
    RoIs; softmax KD (T=1) weighted by the stage's loss weight."""
    d = _build(kind, distill=dict(cls=dict(type='mmkd.KDLoss')),
               deep_supervision=dict(stages=[2]))
    d.train()
    x, samples = _batch()
    if kind == 'htc':  # masks, and a stuff map for its semantic head
        from mmdet.structures.mask import BitmapMasks
        from mmengine.structures import PixelData
        for s in samples:
            masks = torch.zeros(2, 64, 64, dtype=torch.uint8)
            for m, (x0, y0, x1, y1) in zip(
                    masks, s.gt_instances.bboxes.int().tolist()):
                m[y0:y1, x0:x1] = 1
            s.gt_instances.masks = BitmapMasks(masks.numpy(), 64, 64)
            s.gt_sem_seg = PixelData(
                sem_seg=torch.randint(0, 183, (1, 64, 64)))
    roi = d.student.roi_head
    seen = {}
    handles = []

    def keep(name, value):  # hooks must return None
        seen.setdefault(name, value)

    for k in range(roi.num_stages):
        handles.append(roi.bbox_roi_extractor[k].register_forward_pre_hook(
            lambda m, a, k=k: keep(f'rois{k}', a[1])))
        handles.append(roi.bbox_head[k].register_forward_hook(
            lambda m, a, out, k=k: keep(f'cls{k}', out[0])))
    losses = d.loss(x, samples)
    for h in handles:
        h.remove()
    t = d.teacher
    weights = roi.stage_loss_weights
    for k in range(roi.num_stages):

        def run(y, rois, k=k):
            feats = t.extract_feat(y)
            extra = {}
            if getattr(t.roi_head, 'with_semantic', False):
                extra['semantic_feat'] = t.roi_head.semantic_head(feats)[1]
            return t.roi_head._bbox_forward(k, feats, rois,
                                            **extra)['cls_score']

        t_cls = d.teacher_forward(run, x, seen[f'rois{k}'])
        s_cls = seen[f'cls{k}'].detach().double()
        p_t = t_cls.double().softmax(-1)
        kl = (p_t * (p_t.log() - s_cls.log_softmax(-1))).sum(-1).mean()
        torch.testing.assert_close(losses[f'loss_kd_cls_roi_s{k}'].double(),
                                   weights[k] * kl, rtol=1e-4, atol=1e-7)
    assert losses['ds0.loss_kd_cls_roi'] > 0
    total = sum(v if torch.is_tensor(v) else sum(v)
                for k, v in losses.items() if 'loss' in k)
    assert torch.isfinite(total)


# ------------------------------------------------------------ mmdet hooks
def _runner(model, epoch=0, max_epochs=3):
    dataset = types.SimpleNamespace(update_skip_type_keys=lambda keys: None)
    return types.SimpleNamespace(
        model=model, epoch=epoch, max_epochs=max_epochs,
        train_dataloader=types.SimpleNamespace(dataset=dataset),
        logger=types.SimpleNamespace(info=lambda msg: None))


def test_yolox_mode_switch_reaches_student_and_auxiliary_heads():
    from mmdet.engine.hooks import YOLOXModeSwitchHook
    d = _build('yolox', deep_supervision=dict(stages=[1]))
    d.train()
    x, samples = _batch()
    assert 'loss_l1' not in d.loss(x, samples)
    YOLOXModeSwitchHook(num_last_epochs=1).before_train_epoch(
        _runner(d, epoch=2, max_epochs=3))
    assert d.student.bbox_head.use_l1 is True
    losses = d.loss(x, samples)
    assert 'loss_l1' in losses and 'ds0.loss_l1' in losses
    assert d.ds_branches[0]['head'].use_l1 is True


def test_set_epoch_info_and_sync_norm_hooks():
    from mmdet.engine.hooks import SetEpochInfoHook, SyncNormHook
    _with_epoch(0)
    d = _build('tood', deep_supervision=dict(stages=[1]))
    SetEpochInfoHook().before_train_epoch(_runner(d, epoch=5))
    assert d.student.bbox_head.epoch == 5
    assert d.ds_branches[0]['head'].epoch == 5
    SyncNormHook().before_val_epoch(_runner(d))  # one process: no-op
    # hooks that read runner.model.<student module> see the student's
    assert d.bbox_head is d.student.bbox_head
    assert d.backbone is d.student.backbone


# ------------------------------------------------------------ refusals
def _mmdet_model(path):
    from mmengine.hub import get_config
    model = get_config(path).model
    model.pop('_scope_', None)
    if 'backbone' in model:
        model.backbone.init_cfg = None
    return model


@pytest.mark.parametrize('path,what', [
    ('mmdet::detr/detr_r50_8xb2-150e_coco.py', 'DETR'),
    ('mmdet::centernet/centernet_r18_8xb16-crop512-140e_coco.py',
     'CenterNet with head CenterNetHead'),
    ('mmdet::yolo/yolov3_mobilenetv2_8xb24-320-300e_coco.py',
     'YOLOV3 with head YOLOV3Head'),
])
def test_unsupported_families_are_refused_at_build(path, what):
    init_default_scope('mmdet')
    model = _mmdet_model(path)
    with pytest.raises(ValueError) as err:
        DetectionDistiller(student=model, teacher=copy.deepcopy(model))
    msg = str(err.value)
    assert what in msg and 'not supported' in msg
    for family in ('RetinaNet', 'RTMDet', 'YOLOX', 'TOOD', 'Cascade', 'HTC',
                   'DINO'):
        assert family in msg


def test_yolox_joint_score_logit_is_stable():
    from mmkd.models.distillers.detection.families import _joint_logit
    c = torch.tensor([-30.0, 0.0, 3.0, 30.0])
    o = torch.tensor([-30.0, 0.0, -2.0, 30.0])
    z = _joint_logit(c, o)
    p = c.double().sigmoid() * o.double().sigmoid()
    assert torch.isfinite(z).all()
    torch.testing.assert_close(z[:3].sigmoid().double(), p[:3], rtol=1e-5,
                               atol=1e-12)
    assert F.logsigmoid(z[3]) > -1e-5  # p ~ 1 stays ~1
