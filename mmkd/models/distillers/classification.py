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
from mmkd.deep_supervision.loop import DeepSupervision
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
        deep_supervision (dict, optional): The shared contract
            (:class:`mmkd.deep_supervision.loop.DeepSupervision`:
            ``stages`` (indices into the timm student's ``feature_info``,
            e.g. ``[1, 2, 3]`` for ResNet layer1..3 or ViT block indices;
            sorted), ``stage_weights``, ``mode`` (``'light'``: CNN heads
            keep the stage's width; ``'full'``: OFA-KD's channel doubling),
            ``gt_weight`` (label loss on the heads, default 0),
            ``kd_weight``) plus ``head`` (``'auto'``, ``'cnn'``,
            ``'vit'``). Defaults to None (off).
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
        self.ds = None
        self.ds_heads = None
        if deep_supervision:
            info = self.student.model.feature_info
            self.ds = DeepSupervision(
                dict(deep_supervision), len(info), 0.0,
                self.kd_loss is not None,
                [i.get('module', str(k)) for k, i in enumerate(info)])
            self.ds_heads = build_stage_heads(
                info, self.ds.stages, s_cls,
                self.ds.cfg.get('head', 'auto'), self.ds.mode)
        self.restore_rng()

    @property
    def ds_stages(self) -> list:
        return self.ds.stages if self.ds else []

    @property
    def ds_weights(self) -> list:
        return self.ds.weights if self.ds else []

    def teacher_eval_inputs(self, x: torch.Tensor) -> torch.Tensor:
        """The batch at ``teacher_input_size`` (bicubic), as in training."""
        if self.teacher_input_size is not None and \
                tuple(x.shape[-2:]) != tuple(self.teacher_input_size):
            x = F.interpolate(
                x, size=self.teacher_input_size, mode='bicubic',
                align_corners=False)
        return x

    def teacher_logits(self, inputs: torch.Tensor) -> torch.Tensor:
        """The teacher's logits for the (mixed) student batch."""

        return self.teacher_forward(
            lambda x: self.teacher(self.teacher_eval_inputs(x), mode='tensor'),
            inputs)

    def loss(self, inputs: torch.Tensor,
             data_samples: list) -> Dict[str, torch.Tensor]:
        model = self.student.model
        if self.ds is None:
            logits, feats = model(inputs), []
        else:
            final, feats = model.forward_intermediates(
                inputs, indices=self.ds.stages)
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
            kd['loss_kd'] = self.kd_loss(logits.float(), t_logits,
                                         target=target)
        if self.ds is not None:
            feats = dict(zip(self.ds.stages, feats))

            def run(head, stage, with_gt):
                h_logits = head(feats[stage])
                gt = self.student.loss_by_logits(h_logits, data_samples) \
                    if with_gt else None
                return h_logits, gt

            gt, ds_kd = self.ds.losses(
                self.ds_heads, run,
                lambda h: {'loss_kd': self.kd_loss(h.float(), t_logits,
                                                   target=target)},
                t_logits is not None)
            losses.update(gt)
            kd.update(ds_kd)
        losses.update(self.scaled(kd))
        return losses
