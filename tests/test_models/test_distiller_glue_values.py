"""Values of the distiller glue, computed by hand: deep-supervision KD of
each level against the teacher's same level, LD's positives are the
student assigner's, CWD between mismatched backbones."""
import torch
import torch.nn.functional as F
from mmengine.registry import init_default_scope

import mmkd  # noqa: F401
from helpers.det_models import tiny_detector
from helpers.seg_models import tiny_segmentor
from mmkd.models import DetectionDistiller, SegmentationDistiller
from mmkd.models.distillers.detection import dense
from test_detection_distiller import _batch as det_batch
from test_segmentation_distiller import _batch as seg_batch


def _hand_sigmoid_kd(s: torch.Tensor, t: torch.Tensor, classes: int):
    """Mean over locations of the per-class binary KL (T = 1), float64."""
    p_s, p_t = s.double().sigmoid(), t.double().sigmoid()
    kl = p_t * (p_t.log() - p_s.log()) + \
        (1 - p_t) * ((1 - p_t).log() - (1 - p_s).log())
    b, ac, h, w = kl.shape
    return kl.sum() / (b * h * w * (ac // classes))


def test_deep_supervision_kd_pairs_each_level_with_the_teachers():
    init_default_scope('mmdet')
    torch.manual_seed(0)
    d = DetectionDistiller(student=tiny_detector('retinanet', width=8),
                           teacher=tiny_detector('retinanet', width=16),
                           deep_supervision=dict(stages=[2],
                                                 stage_weights=[0.5]),
                           teacher_precision='fp32')
    d.train()
    x, samples = det_batch()
    seen = []
    d.ds_branches[0]['head'].register_forward_hook(
        lambda m, a, out: seen.append(out) and None)
    losses = d.loss(x, samples)
    t = d.teacher
    t_cls = d.teacher_forward(lambda y: t.bbox_head(t.extract_feat(y)),
                              x)[0]
    a_cls = seen[0][0]
    c = d.student.bbox_head.cls_out_channels
    for lvl in range(5):
        want = 0.5 * _hand_sigmoid_kd(a_cls[lvl].detach(), t_cls[lvl], c)
        got = losses[f'ds0.loss_kd_cls_l{lvl}'].double()
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-7)
    # the pairing matters: against another level's teacher map (same
    # shape after pooling) the value differs
    other = F.adaptive_avg_pool2d(t_cls[0], t_cls[1].shape[-2:])
    assert not torch.isclose(
        losses['ds0.loss_kd_cls_l1'].double(),
        0.5 * _hand_sigmoid_kd(a_cls[1].detach(), other, c), rtol=1e-3)


def test_ld_positives_are_the_student_assigners():
    """GFL's ATSS assigner: every positive location's anchor centre lies
    inside a ground-truth box of its image, and each box has positives."""
    init_default_scope('mmdet')
    d = DetectionDistiller(student=tiny_detector('gfl', width=8),
                           teacher=tiny_detector('gfl', width=16))
    head = d.student.bbox_head
    x, samples = det_batch()
    cls = head(d.student.extract_feat(x))[0]
    pos = dense.positives(head, cls, samples)
    sizes = [c.shape[-2:] for c in cls]
    anchors = head.prior_generator.grid_priors(sizes, device=x.device)
    total = 0
    for lvl, (mask, anc) in enumerate(zip(pos, anchors)):
        per_image = mask.view(len(samples), -1)
        for b, sample in enumerate(samples):
            idx = per_image[b].nonzero().flatten()
            total += idx.numel()
            centre = (anc[idx, :2] + anc[idx, 2:]) / 2
            boxes = sample.gt_instances.bboxes
            inside = ((centre[:, None, 0] > boxes[None, :, 0]) &
                      (centre[:, None, 0] < boxes[None, :, 2]) &
                      (centre[:, None, 1] > boxes[None, :, 1]) &
                      (centre[:, None, 1] < boxes[None, :, 3])).any(1)
            assert inside.all(), (lvl, b)
    assert total >= 2 * len(samples)  # both boxes of each image


def test_cwd_between_mismatched_backbones_by_hand():
    """A SegFormer teacher (logits at 1/4) and a ResNet PSPNet student
    (1/8): CWD brings the student's map to the teacher's size (bilinear)
    and averages the spatial KL over batch x channels."""
    init_default_scope('mmseg')
    torch.manual_seed(0)
    d = SegmentationDistiller(
        student=tiny_segmentor('pspnet', 8),
        teacher=tiny_segmentor('segformer', 16),
        distill=dict(logits=dict(type='mmkd.ChannelWiseDivergence',
                                 temperature=2.0, loss_weight=3.0)),
        distill_aux_head=False, teacher_precision='fp32')
    d.train()
    x, samples = seg_batch()
    seen = []
    d.student.decode_head.conv_seg.register_forward_hook(
        lambda m, a, out: seen.append(out) and None)
    losses = d.loss(x, samples)
    t = d.teacher
    t_map = d.teacher_forward(lambda y: t.decode_head(t.extract_feat(y)), x)
    s_map = seen[0].detach()
    assert s_map.shape[-1] * 2 == t_map.shape[-1]  # 1/8 vs 1/4
    s_up = F.interpolate(s_map, size=t_map.shape[-2:], mode='bilinear',
                         align_corners=False).double()
    T = 2.0
    p_t = (t_map.double() / T).flatten(2).softmax(-1)
    log_p_s = (s_up / T).flatten(2).log_softmax(-1)
    kl = (p_t * (p_t.log() - log_p_s)).sum(-1)  # (B, C)
    want = 3.0 * T**2 * kl.mean()
    torch.testing.assert_close(losses['decode.loss_kd'].double(), want,
                               rtol=1e-4, atol=1e-7)
