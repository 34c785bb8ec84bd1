"""Dense detectors (RetinaNet, FCOS, ATSS, GFL, RTMDet, YOLOX, TOOD).

The student's own ``loss()`` computes its task losses; forward hooks keep
its backbone stages and its head's outputs. KD compares, per FPN level, the
scores the detector ranks boxes by (:func:`~.families.score_logits`:
class logits, TOOD's class probabilities as logits, YOLOX's
``sigmoid(cls) * sigmoid(obj)`` as a logit) with the teacher's, and for
GFL-style heads the box distributions on the student's positives (LD,
https://arxiv.org/abs/2102.12252, as mmdet's ``LDHead``). Auxiliary heads
of the student's head type on intermediate stages are trained by their own
``loss()`` and by the same KD from the teacher's final predictions. With
``teacher_cache`` the teacher's outputs are replayed from disk where the
cache has them (:mod:`.teacher_cache`).
"""
import copy
from typing import Dict, List, Optional, Sequence

import torch
import torch.nn as nn
from mmengine.model import ModuleDict
from mmengine.registry import MODELS as ROOT_MODELS
from mmengine.registry import DefaultScope

from mmkd.deep_supervision.pyramid import StageToPyramid
from mmkd.losses import SigmoidKDLoss
from ..capture import Capture
from .families import cls_channels, levels_of, score_logits

#: the light auxiliary heads: a 64-channel pyramid and one conv per tower
LIGHT = dict(channels=64, head=dict(stacked_convs=1))


def _flat(x: torch.Tensor, channels: int) -> torch.Tensor:
    """(B, A*K, H, W) -> (B*H*W*A, K)."""
    return x.permute(0, 2, 3, 1).reshape(-1, channels)


def check_pair(student: nn.Module, teacher: nn.Module, s_family, t_family,
               distill: dict) -> None:
    """Build-time checks of a dense pair: both sides' values named."""
    sh, th = student.bbox_head, teacher.bbox_head
    s_lv, t_lv = levels_of(sh), levels_of(th)
    checks = [
        ('class count', sh.num_classes, th.num_classes),
        ('level count', s_lv[0], t_lv[0]),
        ('strides', s_lv[1], t_lv[1]),
        ('priors per location', s_lv[2], t_lv[2]),
        ('sigmoid classification', getattr(sh, 'use_sigmoid_cls', True),
         getattr(th, 'use_sigmoid_cls', True)),
        ('score (what boxes are ranked by)', s_family.score, t_family.score),
    ]
    if 'box' in distill:
        if not s_family.box_distribution:
            raise ValueError(
                "distill.box needs GFL-style heads with 'reg_max' (box "
                f'distributions); the student head is {type(sh).__name__}')
        checks.append(('box distribution bins (reg_max)', sh.reg_max,
                       getattr(th, 'reg_max', None)))
    for what, a, b in checks:
        if a != b:
            raise ValueError(f'student and teacher differ in {what}: '
                             f'student {a}, teacher {b}')


def build_branches(model_cfg, scope: str, student: nn.Module, ds,
                   stage_ch: List[int], stage_strides: List[int],
                   norm_cfg: dict) -> nn.ModuleList:
    """One auxiliary branch per deep-supervision stage: a pyramid from the
    stage at the head's strides and a head of the student's type."""
    from mmengine.model import ModuleList
    head_mod = student.bbox_head
    strides = levels_of(head_mod)[1]
    full_ch = model_cfg.bbox_head.in_channels
    channels = ds.cfg.get('channels',
                          LIGHT['channels'] if ds.light else full_ch)
    overrides = dict(LIGHT['head'] if ds.light else {})
    overrides.update(ds.cfg.get('head', {}))
    branches = ModuleList()
    for s in ds.stages:
        neck = StageToPyramid(stage_ch[s], channels, stage_strides[s],
                              strides, norm_cfg=norm_cfg)
        head = dict(copy.deepcopy(model_cfg.bbox_head),
                    in_channels=channels,
                    train_cfg=model_cfg.get('train_cfg'),
                    test_cfg=model_cfg.get('test_cfg'))
        if 'feat_channels' in head:
            head['feat_channels'] = channels
        head.update(overrides)
        if not hasattr(head_mod, 'stacked_convs'):
            head.pop('stacked_convs', None)  # no conv tower
        with DefaultScope.overwrite_default_scope(scope):
            branches.append(
                ModuleDict(dict(neck=neck, head=ROOT_MODELS.build(head))))
    return branches


def live_teacher(d, inputs: torch.Tensor, data_samples: list):
    """The teacher's head outputs on the batch (``extract_feat`` and the
    head's forward, through :meth:`BaseDistiller.teacher_forward`)."""
    teacher = d.teacher
    return d.teacher_forward(
        lambda x: teacher.bbox_head(teacher.extract_feat(x)), inputs,
        data_samples=data_samples)


def loss(d, inputs: torch.Tensor, data_samples: list) -> dict:
    """The student's own loss plus KD and deep supervision."""
    student, head = d.student, d.student.bbox_head
    # a teacher cache starts reading this batch's entries now, in the
    # background, while the student's forward runs
    cache = getattr(d, 'teacher_cache', None) if d.teacher_active else None
    ticket = cache.fetch(d, data_samples) if cache is not None else None
    with Capture() as cap:
        if d.ds is not None:
            cap.output(student.backbone, 'stages')
        cap.output(head, 'outs')
        losses = student.loss(inputs, data_samples)
    s_outs = cap['outs']
    pos, teacher_out = None, None
    if d.teacher_active:
        if 'box' in d.kd_losses:
            pos = positives(head, s_outs[0], data_samples)
        if cache is not None:
            teacher_out = cache.teacher_out(
                d, ticket, inputs, data_samples,
                [c.shape[-2:] for c in s_outs[0]], pos)
        else:
            t_outs = live_teacher(d, inputs, data_samples)
            teacher_out = (t_outs, score_logits(d.family, t_outs))
    kd = {}
    if teacher_out is not None:
        kd.update(dense_kd(d, s_outs, teacher_out, pos))
    if d.ds is not None:
        for name in d.family.mirrored:  # e.g. YOLOX's use_l1 switch
            for branch in d.ds_branches:
                setattr(branch['head'], name, getattr(head, name))

        def run(branch, stage, with_gt):
            feats = branch['neck'](cap['stages'][stage])
            if not with_gt:
                return branch['head'](feats), None
            with Capture() as c:
                c.output(branch['head'], 'outs')
                gt = branch['head'].loss(feats, data_samples)
            return c['outs'], gt

        gt, ds_kd = d.ds.losses(
            d.ds_branches, run,
            lambda outs: dense_kd(d, outs, teacher_out, pos),
            teacher_out is not None)
        losses.update(gt)
        kd.update(ds_kd)
    losses.update(d.scaled(kd))
    return losses


def dense_kd(d, s_outs: Sequence, teacher_out: tuple,
             pos: Optional[List[torch.Tensor]]) -> Dict[str, torch.Tensor]:
    """KD terms ``loss_kd_<term>_l<level>`` of one head's outputs against
    ``teacher_out = (teacher head outputs, their score logits)``."""
    losses = {}
    head = d.student.bbox_head
    channels = cls_channels(head)
    t_outs, t_score = teacher_out
    s_score = score_logits(d.family, s_outs)
    for term, loss_fn in d.kd_losses.items():
        for lvl in d.kd_levels[term] or range(len(s_score)):
            if term == 'cls':
                s, t = s_score[lvl], t_score[lvl]
            else:
                s, t = s_outs[1][lvl].float(), t_outs[1][lvl]
            if s.shape != t.shape:
                raise RuntimeError(
                    f'loss_kd_{term} level {lvl}: student output '
                    f'{tuple(s.shape)} vs teacher {tuple(t.shape)}')
            name = f'loss_kd_{term}_l{lvl}'
            if term == 'cls':
                losses[name] = cls_kd(loss_fn, s, t, channels)
            else:
                losses[name] = box_kd(loss_fn, s, t, s_score[lvl], pos[lvl],
                                      head)
    return losses


def cls_kd(loss_fn: nn.Module, s: torch.Tensor, t: torch.Tensor,
           channels: int) -> torch.Tensor:
    """Score KD of one level: sigmoid KD on the maps in their own layout,
    softmax KD on flattened locations."""
    if isinstance(loss_fn, SigmoidKDLoss):
        return loss_fn(s, t, channels=channels)
    return loss_fn(_flat(s, channels), _flat(t, channels))


def box_kd(loss_fn: nn.Module, s_box: torch.Tensor, t_box: torch.Tensor,
           s_cls: torch.Tensor, pos: torch.Tensor,
           head: nn.Module) -> torch.Tensor:
    """LD on one level: the positive locations' box sides, weighted by the
    student's top class score there (detached), sum / 4."""
    bins = head.reg_max + 1
    s = s_box.permute(0, 2, 3, 1).reshape(pos.numel(), 4 * bins)[pos]
    t = t_box.permute(0, 2, 3, 1).reshape(pos.numel(), 4 * bins)[pos]
    with torch.no_grad():
        score = _flat(s_cls, cls_channels(head)).sigmoid().max(-1).values[pos]
    if s.numel() == 0:
        return s_box.sum() * 0
    return loss_fn(s.reshape(-1, bins), t.reshape(-1, bins),
                   weight=score.repeat_interleave(4), avg_factor=4.0)


@torch.no_grad()
def positives(head: nn.Module, cls_scores: List[torch.Tensor],
              data_samples: list) -> List[torch.Tensor]:
    """Per level, a flat ``(B * H * W * A,)`` mask of the student head's
    positive samples (its own assigner, as in its loss)."""
    from mmdet.models.utils import unpack_gt_instances
    gt, gt_ignore, metas = unpack_gt_instances(data_samples)
    sizes = [c.shape[-2:] for c in cls_scores]
    anchors, valid = head.get_anchors(sizes, metas,
                                      device=cls_scores[0].device)
    labels = head.get_targets(
        anchors, valid, gt, metas, batch_gt_instances_ignore=gt_ignore)[1]
    return [((lb >= 0) & (lb < head.num_classes)).reshape(-1)
            for lb in labels]
