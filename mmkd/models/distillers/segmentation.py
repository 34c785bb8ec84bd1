"""Distillation for MMSegmentation 1.x segmentors (EncoderDecoder).

* KD on the decode head's logits (``distill.logits``): pixel-wise vanilla KD
  (``mmkd.PixelKDLoss``, ignore-index pixels excluded, maps brought to a
  common resolution) or channel-wise distillation
  (``mmkd.ChannelWiseDivergence``).
* The student's own mmseg ``auxiliary_head`` (if any) is distilled with the
  same loss from the teacher's final logits (``aux.loss_kd``).
* Deep supervision: auxiliary FCN heads on the student backbone stages listed
  in ``deep_supervision.stages``, each trained with cross-entropy on the
  labels (``ds<i>.loss_ce``) and pixel KD from the teacher's final logits
  (``ds<i>.loss_kd``). They live in the wrapper and vanish at export.

The teacher runs ``extract_feat`` and its decode head's ``forward`` under
``no_grad`` — never its losses. Student and teacher may differ in backbone,
channels and output stride; their class counts must match.
"""
import copy
from typing import Dict, Optional

import torch
import torch.nn as nn
from mmengine.registry import MODELS as ROOT_MODELS
from mmengine.registry import DefaultScope

from mmkd.registry import MODELS
from .base import BaseDistiller
from .builder import ModelSpec, load_model_cfg


def _prefixed(losses: dict, prefix: str) -> dict:
    return {f'{prefix}.{k}': v for k, v in losses.items()}


@MODELS.register_module()
class SegmentationDistiller(BaseDistiller):
    """Pixel KD / CWD + multi-level deep supervision for mmseg segmentors.

    Args:
        student (str | dict): Student segmentor (dict, ``mmseg::`` or local
            config path).
        teacher (str | dict): Teacher segmentor, same forms.
        distill (dict): ``logits``: the loss on the decode-head logits.
            Defaults to ``dict(logits=dict(type='mmkd.PixelKDLoss'))``.
        distill_aux_head (bool): Also distil the student's own
            ``auxiliary_head``. Defaults to True.
        deep_supervision (dict, optional): ``stages`` (indices into the
            backbone outputs) and optionally ``channels`` (FCN width, default
            64), ``stage_weights``, ``gt_weight``, ``kd_weight`` (default 1).
            Defaults to None (off).
        **kwargs: The options of :class:`BaseDistiller` (``teacher_ckpt``,
            ``eval_teacher``, ...).
    """

    default_scope = 'mmseg'

    def __init__(self,
                 student: ModelSpec,
                 teacher: ModelSpec,
                 distill: dict = dict(logits=dict(type='mmkd.PixelKDLoss')),
                 distill_aux_head: bool = True,
                 deep_supervision: Optional[dict] = None,
                 **kwargs) -> None:
        super().__init__(student, teacher, **kwargs)
        s_cls = self.student.decode_head.num_classes
        t_cls = self.teacher.decode_head.num_classes
        if s_cls != t_cls:
            raise ValueError('student and teacher differ in class count: '
                             f'student {s_cls}, teacher {t_cls}')
        unknown = set(distill or {}) - {'logits'}
        if unknown:
            raise KeyError(f'distill: unknown terms {sorted(unknown)} '
                           "(expected 'logits')")
        self.kd_loss = MODELS.build(distill['logits'])
        self.distill_aux_head = distill_aux_head
        self.ignore_index = self.student.decode_head.ignore_index
        self.ds_cfg = dict(deep_supervision or {})
        self.ds_heads = nn.ModuleList()
        self.ds_weights = []
        if self.ds_cfg:
            self._build_deep_supervision(student)

    def _build_deep_supervision(self, student: ModelSpec) -> None:
        cfg = self.ds_cfg
        channels, _ = self.student_stages(64)
        stages, self.ds_weights = self.deep_supervision_stages(
            cfg, len(channels))
        model_cfg, scope, _ = load_model_cfg(student, self.default_scope)
        head = model_cfg.decode_head
        for s in stages:
            fcn = dict(
                type='FCNHead',
                in_channels=channels[s],
                in_index=s,
                channels=cfg.get('channels', 64),
                num_convs=1,
                concat_input=False,
                dropout_ratio=0.1,
                num_classes=head.num_classes,
                norm_cfg=copy.deepcopy(head.get('norm_cfg')),
                align_corners=head.get('align_corners', False),
                loss_decode=dict(
                    type='CrossEntropyLoss', use_sigmoid=False,
                    loss_weight=1.0))
            with DefaultScope.overwrite_default_scope(scope):
                self.ds_heads.append(ROOT_MODELS.build(fcn))

    def loss(self, inputs: torch.Tensor,
             data_samples: list) -> Dict[str, torch.Tensor]:
        student = self.student
        teacher = self.teacher
        t_logits = self.teacher_forward(
            lambda x: teacher.decode_head(teacher.extract_feat(x)), inputs)
        labels = torch.stack([d.gt_sem_seg.data for d in data_samples])
        stages = student.backbone(inputs)  # extract_feat, keeping the stages
        x = student.neck(stages) if student.with_neck else stages
        s_logits = student.decode_head(x)
        losses = _prefixed(
            student.decode_head.loss_by_feat(s_logits, data_samples),
            'decode')
        kd = {'decode.loss_kd': self.kd_loss(s_logits, t_logits, labels)}
        if student.with_auxiliary_head:
            heads = student.auxiliary_head
            named = [(f'aux_{i}', h) for i, h in enumerate(heads)] \
                if isinstance(heads, nn.ModuleList) else [('aux', heads)]
            for name, head in named:
                logits = head(x)
                losses.update(
                    _prefixed(head.loss_by_feat(logits, data_samples), name))
                if self.distill_aux_head:
                    kd[f'{name}.loss_kd'] = self.kd_loss(
                        logits, t_logits, labels)
        for i, (head, w) in enumerate(zip(self.ds_heads, self.ds_weights)):
            logits = head(stages)
            gt_w = w * self.ds_cfg.get('gt_weight', 1.0)
            for k, v in head.loss_by_feat(logits, data_samples).items():
                losses[f'ds{i}.{k}'] = v * gt_w if 'loss' in k else v
            kd[f'ds{i}.loss_kd'] = w * self.ds_cfg.get('kd_weight', 1.0) * \
                self.kd_loss(logits, t_logits, labels)
        losses.update(self.scaled(kd))
        return losses
