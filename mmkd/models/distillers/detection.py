"""Distillation for MMDetection 3.x detectors.

* Dense heads (RetinaNet, FCOS, ATSS, GFL, ...): KD on the class logits of
  every location of every FPN level (``distill.cls``), and for GFL-style heads
  on the box distributions (``distill.box``, softmax KD over the
  ``reg_max + 1`` bins of each side, as in LD, https://arxiv.org/abs/2102.12252,
  each location weighted by the teacher's top class score).
* Two-stage detectors (Faster / Mask R-CNN): KD on the RoI classification
  logits (``distill.cls``), the teacher's RoI head run on the student's
  sampled RoIs.
* Deep supervision: auxiliary heads of the student's head type on
  intermediate backbone stages (:class:`StageToPyramid` builds their
  pyramid). Dense: each is trained with the head's own task loss and KD from
  the teacher's final predictions at the same strides. Two-stage: auxiliary
  RoI heads on the student's sampled RoIs, trained by KD from the teacher's
  RoI logits.

The teacher runs ``extract_feat`` and its head's ``forward`` (or its RoI
head's ``_bbox_forward``) under ``no_grad``: never its losses, label
assignment or post-processing.
"""
import copy
from typing import Dict, Optional, Sequence

import torch
import torch.nn as nn
from mmengine.registry import MODELS as ROOT_MODELS
from mmengine.registry import DefaultScope

from mmkd.deep_supervision.pyramid import StageToPyramid
from mmkd.registry import MODELS
from .base import BaseDistiller
from .builder import ModelSpec, load_model_cfg


def _flat(x: torch.Tensor, channels: int) -> torch.Tensor:
    """(B, A*K, H, W) -> (B*H*W*A, K)."""
    return x.permute(0, 2, 3, 1).reshape(-1, channels)


@MODELS.register_module()
class DetectionDistiller(BaseDistiller):
    """KD + multi-level deep supervision for any mmdet 3.x detector.

    Args:
        student (str | dict): Student detector (dict, ``mmdet::`` or local
            config path).
        teacher (str | dict): Teacher detector, same forms.
        distill (dict): One entry per term, each a loss config plus optional
            ``levels`` (indices of the FPN levels; default all). Terms:
            ``cls`` (class logits; ``mmkd.SigmoidKDLoss`` for sigmoid heads,
            ``mmkd.KDLoss`` for softmax ones and RoI heads) and ``box`` (GFL
            box distributions, ``mmkd.KDLoss``). Defaults to
            ``dict(cls=dict(type='mmkd.SigmoidKDLoss'))``.
        deep_supervision (dict, optional): ``stages`` (indices into the
            backbone's outputs), and optionally ``channels`` (width of the
            auxiliary pyramid, default the head's ``in_channels``), ``head``
            (keys overriding the student head's config in the auxiliary
            heads, e.g. ``dict(stacked_convs=2)``), ``stage_weights`` (one
            per stage, default 1), ``gt_weight`` and ``kd_weight`` (default
            1). Defaults to None (off).
        **kwargs: The options of :class:`BaseDistiller` (``teacher_ckpt``,
            ``eval_teacher``, ...).
    """

    default_scope = 'mmdet'

    def __init__(self,
                 student: ModelSpec,
                 teacher: ModelSpec,
                 distill: dict = dict(cls=dict(type='mmkd.SigmoidKDLoss')),
                 deep_supervision: Optional[dict] = None,
                 **kwargs) -> None:
        super().__init__(student, teacher, **kwargs)
        self.two_stage = hasattr(self.student, 'roi_head')
        self._check_compatible(distill)
        self.kd_levels = {}
        self.kd_losses = nn.ModuleDict()
        for term, cfg in (distill or {}).items():
            if term not in ('cls', 'box'):
                raise KeyError(f"distill: unknown term '{term}' (expected "
                               "'cls' or 'box')")
            cfg = dict(cfg)
            self.kd_levels[term] = cfg.pop('levels', None)
            self.kd_losses[term] = MODELS.build(cfg)
        self.ds_cfg = dict(deep_supervision or {})
        self.ds_branches = nn.ModuleList()
        self.ds_stages, self.ds_weights = [], []
        if self.ds_cfg:
            self._build_deep_supervision(student)

    # ------------------------------------------------------------ checks
    def _check_compatible(self, distill: dict) -> None:
        s, t = self.student, self.teacher
        if hasattr(t, 'roi_head') != self.two_stage:
            kind = ('two-stage', 'dense')
            raise ValueError(
                'student and teacher must both be two-stage or both dense: '
                f'student is {kind[not self.two_stage]}, teacher is '
                f'{kind[not hasattr(t, "roi_head")]}')
        if self.two_stage:
            sh, th = s.roi_head.bbox_head, t.roi_head.bbox_head
            checks = [('class count', sh.num_classes, th.num_classes)]
        else:
            sh, th = s.bbox_head, t.bbox_head
            sg, tg = sh.prior_generator, th.prior_generator
            checks = [
                ('class count', sh.num_classes, th.num_classes),
                ('level count', sg.num_levels, tg.num_levels),
                ('strides', [st[0] for st in sg.strides],
                 [st[0] for st in tg.strides]),
                ('anchors per location', sg.num_base_priors,
                 tg.num_base_priors),
                ('sigmoid classification', sh.use_sigmoid_cls,
                 th.use_sigmoid_cls),
            ]
            if 'box' in (distill or {}):
                checks.append(('box distribution bins (reg_max)',
                               getattr(sh, 'reg_max', None),
                               getattr(th, 'reg_max', None)))
                if getattr(sh, 'reg_max', None) is None:
                    raise ValueError(
                        "distill.box needs GFL-style heads with 'reg_max'; "
                        f'student head is {type(sh).__name__}')
        for what, a, b in checks:
            if a != b:
                raise ValueError(f'student and teacher differ in {what}: '
                                 f'student {a}, teacher {b}')

    # ------------------------------------------------------------ DS
    def _build_deep_supervision(self, student: ModelSpec) -> None:
        cfg = self.ds_cfg
        stage_ch, stage_strides = self.student_stages()
        stages, self.ds_weights = self.deep_supervision_stages(
            cfg, len(stage_ch))
        self.ds_stages = stages
        model_cfg, scope, _ = load_model_cfg(student, self.default_scope)
        if self.two_stage:
            roi = model_cfg.roi_head
            channels = cfg.get('channels', roi.bbox_roi_extractor.out_channels)
            strides = list(roi.bbox_roi_extractor.featmap_strides)
        else:
            channels = cfg.get('channels', model_cfg.bbox_head.in_channels)
            strides = [
                st[0] for st in self.student.bbox_head.prior_generator.strides
            ]
        for s in stages:
            branch = dict(
                neck=StageToPyramid(stage_ch[s], channels, stage_strides[s],
                                    strides))
            with DefaultScope.overwrite_default_scope(scope):
                if self.two_stage:
                    # an auxiliary RoI head of the student's type
                    branch['roi_extractor'] = ROOT_MODELS.build(
                        dict(copy.deepcopy(roi.bbox_roi_extractor),
                             out_channels=channels))
                    # (classification only: nothing would train a box
                    # branch, and DDP refuses parameters without gradients)
                    branch['head'] = ROOT_MODELS.build(
                        dict(copy.deepcopy(roi.bbox_head),
                             in_channels=channels,
                             with_reg=False))
                else:
                    # an auxiliary dense head of the student's type
                    branch['head'] = ROOT_MODELS.build(
                        dict(copy.deepcopy(model_cfg.bbox_head),
                             in_channels=channels,
                             train_cfg=model_cfg.get('train_cfg'),
                             test_cfg=model_cfg.get('test_cfg'),
                             **cfg.get('head', {})))
            self.ds_branches.append(nn.ModuleDict(branch))

    # ------------------------------------------------------------ loss
    def loss(self, inputs: torch.Tensor,
             data_samples: list) -> Dict[str, torch.Tensor]:
        if self.two_stage:
            return self._two_stage_loss(inputs, data_samples)
        from mmdet.models.utils import unpack_gt_instances
        gt, gt_ignore, metas = unpack_gt_instances(data_samples)
        s_stages = self.student.backbone(inputs)
        s_feats = self.student.neck(s_stages) \
            if self.student.with_neck else s_stages
        head = self.student.bbox_head
        s_outs = head(s_feats)
        losses = head.loss_by_feat(*s_outs, gt, metas, gt_ignore)
        teacher = self.teacher
        t_outs = self.teacher_forward(
            lambda x: teacher.bbox_head(teacher.extract_feat(x)), inputs)
        kd = self._dense_kd(s_outs, t_outs, head, 'loss_kd')
        for i, (branch, w) in enumerate(zip(self.ds_branches,
                                            self.ds_weights)):
            feats = branch['neck'](s_stages[self.ds_stages[i]])
            outs = branch['head'](feats)
            gt_w = w * self.ds_cfg.get('gt_weight', 1.0)
            for k, v in branch['head'].loss_by_feat(*outs, gt, metas,
                                                    gt_ignore).items():
                losses[f'ds{i}.{k}'] = [x * gt_w for x in v] if isinstance(
                    v, list) else v * gt_w
            kd_w = w * self.ds_cfg.get('kd_weight', 1.0)
            for k, v in self._dense_kd(outs, t_outs, head,
                                       f'ds{i}.loss_kd').items():
                kd[k] = v * kd_w
        losses.update(self.scaled(kd))
        return losses

    def _dense_kd(self, s_outs: Sequence, t_outs: Sequence, head: nn.Module,
                  prefix: str) -> Dict[str, torch.Tensor]:
        losses = {}
        num_levels = len(s_outs[0])
        for term, loss in self.kd_losses.items():
            for lvl in self.kd_levels[term] or range(num_levels):
                s_cls, t_cls = s_outs[0][lvl], t_outs[0][lvl]
                if term == 'cls':
                    s, t = s_cls, t_cls
                    channels, weight = head.cls_out_channels, None
                else:  # box distributions, weighted as LD
                    s, t = s_outs[1][lvl], t_outs[1][lvl]
                    channels = head.reg_max + 1
                    weight = self._box_weight(t_cls, head)
                if s.shape != t.shape:
                    raise RuntimeError(
                        f'{prefix}_{term} level {lvl}: student output '
                        f'{tuple(s.shape)} vs teacher {tuple(t.shape)}')
                losses[f'{prefix}_{term}_l{lvl}'] = loss(
                    _flat(s, channels), _flat(t, channels), weight=weight)
        return losses

    @staticmethod
    def _box_weight(t_cls: torch.Tensor, head: nn.Module) -> torch.Tensor:
        """Per box side: the teacher's top class score at its location.

        Box distributions only mean something where there is an object, so
        (as LD weights its positives by the teacher's quality score) each
        location counts by the teacher's confidence; the loss is the
        weighted mean.
        """
        scores = _flat(t_cls, head.cls_out_channels).sigmoid().max(-1).values
        return scores.repeat_interleave(4)

    def _two_stage_loss(self, inputs: torch.Tensor,
                        data_samples: list) -> Dict[str, torch.Tensor]:
        """The student's own loss; stages, RoIs and RoI logits are captured
        on the way (forward hooks: the RoI head has no method that returns
        them), so none of mmdet's RoI-head loss code is copied here."""
        roi_head = self.student.roi_head
        seen: Dict[str, torch.Tensor] = {}

        def keep(name, pick):
            # hooks must return None, or they replace the args / output
            def hook(module, *args):
                seen.setdefault(name, pick(args))
            return hook

        hooks = [
            self.student.backbone.register_forward_hook(
                keep('stages', lambda a: a[1])),
            roi_head.bbox_roi_extractor.register_forward_pre_hook(
                keep('rois', lambda a: a[0][1])),
            roi_head.bbox_head.register_forward_hook(
                keep('cls', lambda a: a[1][0])),
        ]
        try:
            losses = self.student.loss(inputs, data_samples)
        finally:
            for h in hooks:
                h.remove()
        rois = seen['rois']
        kd = {}
        if 'cls' in self.kd_losses:
            loss = self.kd_losses['cls']
            teacher = self.teacher
            t_cls = self.teacher_forward(
                lambda x, r: teacher.roi_head._bbox_forward(
                    teacher.extract_feat(x), r)['cls_score'], inputs, rois)
            kd['loss_kd_cls_roi'] = loss(seen['cls'], t_cls)
            # auxiliary RoI heads: KD from the teacher's RoI logits (the
            # label loss would need the RoI head's sampling results)
            for i, (branch, w) in enumerate(zip(self.ds_branches,
                                                self.ds_weights)):
                feats = branch['neck'](seen['stages'][self.ds_stages[i]])
                extractor = branch['roi_extractor']
                cls = branch['head'](extractor(feats[:extractor.num_inputs],
                                               rois))[0]
                kd[f'ds{i}.loss_kd_cls_roi'] = w * self.ds_cfg.get(
                    'kd_weight', 1.0) * loss(cls, t_cls)
        losses.update(self.scaled(kd))
        return losses
