"""Distillation for MMSegmentation 1.x segmentors (EncoderDecoder).

* KD on the decode head's logits (``distill.logits``): pixel-wise vanilla KD
  (``mmkd.PixelKDLoss``, ignore-index pixels excluded, maps brought to a
  common resolution) or channel-wise distillation
  (``mmkd.ChannelWiseDivergence``).
* The student's own mmseg ``auxiliary_head`` (if any) is distilled with the
  same loss from the teacher's final logits (``aux.loss_kd``).
* Deep supervision: light auxiliary FCN heads (one 3x3 conv of 64 channels)
  on the student backbone stages listed in ``deep_supervision.stages``, each
  trained by pixel KD from the teacher's final logits (``ds<i>.loss_kd``) at
  the logits' own resolution and, with ``gt_weight > 0``, also by
  cross-entropy on the labels (``ds<i>.loss_ce``, mmseg's loss, computed at
  the label resolution: the costly part). They live in the wrapper and
  vanish at export.

Pixels whose label is the student decode head's ``ignore_index`` do not
count in the KD terms. The teacher runs ``extract_feat`` and its decode
head's ``forward`` through :meth:`BaseDistiller.teacher_forward` — never its
losses, and not at all while no distillation term is active. Student and
teacher may differ in backbone, channels and output stride; their class
counts must match.
"""
import inspect
import copy
from typing import Dict, Optional

import torch
import torch.nn as nn
from mmengine.model import ModuleList
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
        distill (dict): ``logits``: the loss on the decode-head logits; its
            ``ignore_index`` is the student decode head's. An empty dict
            trains the auxiliary heads on labels only and never runs the
            teacher. Defaults to
            ``dict(logits=dict(type='mmkd.PixelKDLoss'))``.
        distill_aux_head (bool): Also distil the student's own
            ``auxiliary_head``. Defaults to True.
        deep_supervision (dict, optional): ``stages`` (indices into the
            backbone outputs) and optionally ``channels`` (FCN width, default
            64), ``num_convs`` (default 1), ``stage_weights``, ``kd_weight``
            (default 1), ``mode`` (``'light'``, the default, or ``'full'``)
            and ``gt_weight`` (the label loss: default 0 in the light mode,
            1 in the full one). Defaults to None (off).
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
        self.ignore_index = self.student.decode_head.ignore_index
        self.kd_loss = None
        if distill:
            self.kd_loss = MODELS.build(
                self._with_ignore_index(dict(distill['logits'])))
        self.uses_teacher = self.kd_loss is not None
        self.distill_aux_head = distill_aux_head
        self.ds_cfg = dict(deep_supervision or {})
        self.ds_heads = ModuleList()
        self.ds_weights = []
        mode = self.ds_cfg.get('mode', 'light')
        if mode not in ('light', 'full'):
            raise ValueError("deep_supervision.mode must be 'light' or "
                             f"'full', got {mode!r}")
        self.ds_gt_weight = self.ds_cfg.get('gt_weight',
                                            0.0 if mode == 'light' else 1.0)
        self.ds_kd_weight = self.ds_cfg.get('kd_weight', 1.0)
        if self.ds_cfg:
            self._build_deep_supervision(student)

    def _with_ignore_index(self, cfg: dict) -> dict:
        """The loss config with the student decode head's ignore index (for
        losses that take one); a different explicit value is an error."""
        loss_cls = MODELS.get(cfg['type'])
        if loss_cls is None or 'ignore_index' not in inspect.signature(
                loss_cls).parameters:
            return cfg
        given = cfg.setdefault('ignore_index', self.ignore_index)
        if given != self.ignore_index:
            raise ValueError(
                f'distill.logits.ignore_index is {given}, but the student '
                f'decode head ignores label {self.ignore_index}')
        return cfg

    def _build_deep_supervision(self, student: ModelSpec) -> None:
        cfg = self.ds_cfg
        channels, _ = self.student_stages(64)
        stages, self.ds_weights = self.deep_supervision_stages(
            cfg, len(channels))
        if not self.ds_gt_weight and (not self.ds_kd_weight
                                      or self.kd_loss is None):
            raise ValueError(
                'deep_supervision: gt_weight and kd_weight (or distill) are '
                'all 0, so the auxiliary heads would get no gradient')
        model_cfg, scope, _ = load_model_cfg(student, self.default_scope)
        head = model_cfg.decode_head
        for s in stages:
            fcn = dict(
                type='FCNHead',
                in_channels=channels[s],
                in_index=s,
                channels=cfg.get('channels', 64),
                num_convs=cfg.get('num_convs', 1),
                concat_input=False,
                dropout_ratio=0.1,
                num_classes=head.num_classes,
                ignore_index=self.ignore_index,
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
        t_logits = None
        if self.teacher_active:
            teacher = self.teacher
            t_logits = self.teacher_forward(
                lambda x: teacher.decode_head(teacher.extract_feat(x)),
                inputs)
        labels = torch.stack([d.gt_sem_seg.data for d in data_samples])
        stages = student.backbone(inputs)  # extract_feat, keeping the stages
        x = student.neck(stages) if student.with_neck else stages
        s_logits = student.decode_head(x)
        losses = _prefixed(
            student.decode_head.loss_by_feat(s_logits, data_samples),
            'decode')
        kd = {}
        if t_logits is not None:
            kd['decode.loss_kd'] = self.kd_loss(s_logits, t_logits, labels)
        if student.with_auxiliary_head:
            heads = student.auxiliary_head
            named = [(f'aux_{i}', h) for i, h in enumerate(heads)] \
                if isinstance(heads, nn.ModuleList) else [('aux', heads)]
            for name, head in named:
                logits = head(x)
                losses.update(
                    _prefixed(head.loss_by_feat(logits, data_samples), name))
                if self.distill_aux_head and t_logits is not None:
                    kd[f'{name}.loss_kd'] = self.kd_loss(
                        logits, t_logits, labels)
        gt_w0, kd_w0 = self.ds_gt_weight, self.ds_kd_weight
        for i, (head, w) in enumerate(zip(self.ds_heads, self.ds_weights)):
            if not gt_w0 and (t_logits is None or not kd_w0):
                continue
            logits = head(stages)
            if gt_w0:
                for k, v in head.loss_by_feat(logits, data_samples).items():
                    losses[f'ds{i}.{k}'] = v * w * gt_w0 if 'loss' in k else v
            if t_logits is not None and kd_w0:
                kd[f'ds{i}.loss_kd'] = w * kd_w0 * self.kd_loss(
                    logits, t_logits, labels)
        losses.update(self.scaled(kd))
        if self.ds_cfg and not gt_w0 and t_logits is None:
            losses.update(self.idle_loss(self.ds_heads))
        return losses
