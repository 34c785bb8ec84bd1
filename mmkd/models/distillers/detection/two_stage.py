"""Two-stage detectors: Faster / Mask R-CNN, Cascade (Mask) R-CNN, HTC.

The student's own ``loss()`` computes its task losses; forward hooks keep
its backbone stages and, for every RoI stage k, the RoIs its stage-k box
head classified and the logits it gave them. KD runs the teacher's stage-k
box head on the student's stage-k RoIs (over the teacher's own features)
and compares the RoI class logits (softmax KD), weighted like each stage's
own loss (the cascade's ``stage_loss_weights``): the multi-level form the
cascade already has. Deep supervision: auxiliary RoI classifiers on
intermediate backbone stages, on the student's first-stage RoIs, trained by
KD from the teacher's first-stage logits.
"""
import copy
from typing import List

import torch
import torch.nn as nn
from mmengine.model import ModuleDict, ModuleList
from mmengine.registry import MODELS as ROOT_MODELS
from mmengine.registry import DefaultScope

from mmkd.deep_supervision.pyramid import StageToPyramid
from ..capture import Capture


def _as_list(x) -> list:
    return list(x) if isinstance(x, (list, tuple, nn.ModuleList)) else [x]


def num_stages(detector: nn.Module) -> int:
    return len(_as_list(detector.roi_head.bbox_head))


def stage_weights(detector: nn.Module) -> List[float]:
    roi = detector.roi_head
    return list(getattr(roi, 'stage_loss_weights', [1.0]))


def check_pair(student: nn.Module, teacher: nn.Module, distill: dict) -> None:
    if 'box' in distill:
        raise ValueError(
            'distill.box is for GFL-style dense heads; two-stage detectors '
            'support distill.cls (RoI logits) only')
    ns, nt = num_stages(student), num_stages(teacher)
    checks = [
        ('RoI stage count (teacher stage k scores the student\'s stage-k '
         'RoIs)', ns, nt),
        ('class count', _as_list(student.roi_head.bbox_head)[0].num_classes,
         _as_list(teacher.roi_head.bbox_head)[0].num_classes),
    ]
    for what, a, b in checks:
        if a != b:
            raise ValueError(f'student and teacher differ in {what}: '
                             f'student {a}, teacher {b}')


def build_branches(model_cfg, scope: str, ds, stage_ch: List[int],
                   stage_strides: List[int], norm_cfg: dict) -> ModuleList:
    """Auxiliary RoI classifiers (no box branch: nothing would train it,
    and DDP refuses parameters without gradients)."""
    roi = model_cfg.roi_head
    extractor = _as_list(roi.bbox_roi_extractor)[0]
    bbox_head = _as_list(roi.bbox_head)[0]
    # light: a 64-channel pyramid and RoI features; full: the RoI head's
    channels = ds.cfg.get('channels',
                          64 if ds.light else extractor.out_channels)
    strides = list(extractor.featmap_strides)
    branches = ModuleList()
    for s in ds.stages:
        branch = dict(neck=StageToPyramid(stage_ch[s], channels,
                                          stage_strides[s], strides,
                                          norm_cfg=norm_cfg))
        with DefaultScope.overwrite_default_scope(scope):
            branch['roi_extractor'] = ROOT_MODELS.build(
                dict(copy.deepcopy(extractor), out_channels=channels))
            branch['head'] = ROOT_MODELS.build(
                dict(copy.deepcopy(bbox_head), in_channels=channels,
                     with_reg=False, **ds.cfg.get('head', {})))
        branches.append(ModuleDict(branch))
    return branches


def _teacher_logits(roi_head: nn.Module, feats, rois: List[torch.Tensor]):
    """The teacher's stage-k RoI class logits on ``rois[k]``."""
    n = len(rois)
    if n == 1 and not hasattr(roi_head, 'num_stages'):
        return [roi_head._bbox_forward(feats, rois[0])['cls_score']]
    extra = {}
    if getattr(roi_head, 'with_semantic', False):  # HTC's semantic branch
        extra['semantic_feat'] = roi_head.semantic_head(feats)[1]
    return [
        roi_head._bbox_forward(k, feats, r, **extra)['cls_score']
        for k, r in enumerate(rois)
    ]


def loss(d, inputs: torch.Tensor, data_samples: list) -> dict:
    """The student's own loss plus RoI KD at every stage and the auxiliary
    RoI classifiers."""
    roi_head = d.student.roi_head
    extractors = _as_list(roi_head.bbox_roi_extractor)
    heads = _as_list(roi_head.bbox_head)
    with Capture() as cap:
        cap.output(d.student.backbone, 'stages')
        for k, (ext, head) in enumerate(zip(extractors, heads)):
            cap.input(ext, f'rois{k}', lambda a: a[1])
            cap.output(head, f'cls{k}', lambda out: out[0])
        losses = d.student.loss(inputs, data_samples)
    if not d.teacher_active:
        if d.ds is not None:
            losses.update(d.idle_loss(d.ds_branches))
        return losses
    rois = [cap[f'rois{k}'] for k in range(len(heads))]
    teacher = d.teacher
    t_cls = d.teacher_forward(
        lambda x, *r: _teacher_logits(teacher.roi_head,
                                      teacher.extract_feat(x), list(r)),
        inputs, *rois, data_samples=data_samples)
    loss_fn = d.kd_losses['cls']
    kd = {}
    if len(heads) == 1:
        kd['loss_kd_cls_roi'] = loss_fn(cap['cls0'].float(), t_cls[0])
    else:
        for k, w in enumerate(stage_weights(d.student)):
            kd[f'loss_kd_cls_roi_s{k}'] = w * loss_fn(
                cap[f'cls{k}'].float(), t_cls[k])
    if d.ds is not None:

        def run(branch, stage, with_gt):
            feats = branch['neck'](cap['stages'][stage])
            ext = branch['roi_extractor']
            return branch['head'](ext(feats[:ext.num_inputs], rois[0]))[0], \
                None

        _, ds_kd = d.ds.losses(
            d.ds_branches, run,
            lambda cls: {'loss_kd_cls_roi': loss_fn(cls.float(), t_cls[0])},
            True)
        kd.update(ds_kd)
    losses.update(d.scaled(kd))
    return losses
