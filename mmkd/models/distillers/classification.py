"""Distillation for timm classifiers (``mmkd.TimmClassifier``).

``L = w_ori * L_cls(z_s, y) + w_kd * L_kd(z_s, z_t)
+ sum_s w_s * L_kd(h_s, z_t)``
(VanillaKD, https://arxiv.org/abs/2305.15781, and its deep-supervision
extension): the student's own hard-label loss on the (mixup/cutmix) targets,
a logit KD loss (``mmkd.KDLoss``, ``DKDLoss``, ``DISTLoss``, ``BKDLoss``) and,
with ``deep_supervision``, the same KD loss on auxiliary heads attached to
intermediate student stages (plus an optional label loss on them).

The student's data preprocessor mixes the batch once; the teacher sees the
same mixed images, re-normalised its own way and optionally resized to its
own resolution. The teacher runs only its forward to logits, under
``no_grad``.
"""
from typing import Dict, Optional, Sequence

import torch
import torch.nn.functional as F

from mmkd.deep_supervision.cls_heads import build_stage_heads
from mmkd.registry import MODELS
from .base import BaseDistiller
from .builder import ModelSpec


@MODELS.register_module()
class ClassificationDistiller(BaseDistiller):
    """Logit KD + deep supervision for timm classifiers.

    Args:
        student (str | dict): The student ``mmkd.TimmClassifier`` (dict or
            config path).
        teacher (str | dict): The teacher ``mmkd.TimmClassifier``.
        distill (dict): ``logits``: the KD loss between final logits. An
            empty dict trains the auxiliary heads on labels only
            (``gt_weight > 0``) and never runs the teacher. Defaults to
            ``dict(logits=dict(type='mmkd.KDLoss'))``.
        ori_weight (float): ``w_ori``, weight of the student's hard-label
            loss. Defaults to 1.0.
        teacher_input_size (int | Sequence[int], optional): Resize the
            (mixed) batch to this size for the teacher, when it was trained
            at another resolution. Defaults to None (same input).
        deep_supervision (dict, optional): ``stages`` (indices into the timm
            student's ``feature_info``, e.g. ``[1, 2, 3]`` for ResNet
            layer1..3 or ViT block indices), and optionally ``stage_weights``,
            ``kd_weight`` (default 1), ``gt_weight`` (label loss on the
            heads, default 0), ``head`` (``'auto'``, ``'cnn'``, ``'vit'``)
            and ``mode`` (``'light'``: CNN heads keep the stage's width;
            ``'full'``: OFA-KD's channel doubling). Defaults to None (off).
        **kwargs: The options of :class:`BaseDistiller` (``teacher_ckpt``:
            an mmkd run's checkpoint or plain timm keys; ``eval_teacher``,
            ...).
    """

    default_scope = 'mmkd'

    def __init__(self,
                 student: ModelSpec,
                 teacher: ModelSpec,
                 distill: dict = dict(logits=dict(type='mmkd.KDLoss')),
                 ori_weight: float = 1.0,
                 teacher_input_size: Optional[Sequence[int]] = None,
                 deep_supervision: Optional[dict] = None,
                 **kwargs) -> None:
        super().__init__(student, teacher, **kwargs)
        s_cls, t_cls = self.student.num_classes, self.teacher.num_classes
        if s_cls != t_cls:
            raise ValueError('student and teacher differ in class count: '
                             f'student {s_cls}, teacher {t_cls}')
        unknown = set(distill or {}) - {'logits'}
        if unknown:
            raise KeyError(f'distill: unknown terms {sorted(unknown)} '
                           "(expected 'logits')")
        self.kd_loss = MODELS.build(distill['logits']) if distill else None
        self.uses_teacher = self.kd_loss is not None
        self.ori_weight = ori_weight
        if isinstance(teacher_input_size, int):
            teacher_input_size = (teacher_input_size, teacher_input_size)
        self.teacher_input_size = teacher_input_size
        self.ds_cfg = dict(deep_supervision or {})
        self.ds_stages, self.ds_weights = [], []
        self.ds_heads = None
        if self.ds_cfg:
            info = self.student.model.feature_info
            self.ds_stages, self.ds_weights = self.deep_supervision_stages(
                self.ds_cfg, len(info))
            if not self.ds_cfg.get('gt_weight', 0.0) and (
                    not self.ds_cfg.get('kd_weight', 1.0)
                    or self.kd_loss is None):
                raise ValueError(
                    'deep_supervision: gt_weight and kd_weight (or distill) '
                    'are all 0, so the auxiliary heads would get no gradient')
            self.ds_heads = build_stage_heads(
                info, self.ds_stages, s_cls, self.ds_cfg.get('head', 'auto'),
                self.ds_cfg.get('mode', 'light'))

    def teacher_logits(self, inputs: torch.Tensor) -> torch.Tensor:
        """The teacher's logits for the (mixed) student batch."""

        def run(x):
            if self.teacher_input_size is not None and \
                    tuple(x.shape[-2:]) != tuple(self.teacher_input_size):
                x = F.interpolate(
                    x, size=self.teacher_input_size, mode='bicubic',
                    align_corners=False)
            return self.teacher(x, mode='tensor')

        return self.teacher_forward(run, inputs)

    def loss(self, inputs: torch.Tensor,
             data_samples: list) -> Dict[str, torch.Tensor]:
        model = self.student.model
        if self.ds_heads is None:
            logits, feats = model(inputs), []
        else:
            final, feats = model.forward_intermediates(
                inputs, indices=self.ds_stages)
            logits = model.forward_head(final)
        target = self.student.targets(data_samples)
        losses = {
            k: v * self.ori_weight
            for k, v in self.student.loss_by_logits(logits,
                                                    data_samples).items()
        }
        t_logits = self.teacher_logits(inputs) if self.teacher_active \
            else None
        kd = {}
        if t_logits is not None:
            kd['loss_kd'] = self.kd_loss(logits, t_logits, target=target)
        kd_w = self.ds_cfg.get('kd_weight', 1.0)
        gt_w = self.ds_cfg.get('gt_weight', 0.0)
        for i, (head, feat, w) in enumerate(
                zip(self.ds_heads or [], feats, self.ds_weights)):
            if not gt_w and (t_logits is None or not kd_w):
                continue
            h_logits = head(feat)
            if t_logits is not None and kd_w:
                kd[f'ds{i}.loss_kd'] = w * kd_w * self.kd_loss(
                    h_logits, t_logits, target=target)
            if gt_w:
                for k, v in self.student.loss_by_logits(
                        h_logits, data_samples).items():
                    losses[f'ds{i}.{k}'] = w * gt_w * v
        losses.update(self.scaled(kd))
        if self.ds_heads is not None and not gt_w and t_logits is None:
            losses.update(self.idle_loss(self.ds_heads))
        return losses
