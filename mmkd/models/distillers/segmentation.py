"""Distillation for MMSegmentation 1.x segmentors.

Supported: ``EncoderDecoder`` (FCN, PSPNet, DeepLabV3(+), UPerNet,
SegFormer, ...) and ``CascadeEncoderDecoder`` (OCRNet), with the decode
heads in :data:`DECODE_HEADS`; anything else is refused at build, with that
list.

* The student computes its task losses with its own ``loss()``; forward
  hooks keep its backbone stages and the logits of its final decode head,
  of the earlier heads of a cascade and of its ``auxiliary_head``.
* KD on the final decode head's logits (``decode.loss_kd``): pixel-wise
  vanilla KD (``mmkd.PixelKDLoss``, ignore-index pixels excluded, maps
  brought to a common resolution) or channel-wise distillation
  (``mmkd.ChannelWiseDivergence``). The earlier cascade heads (OCRNet's FCN
  head) and the student's own ``auxiliary_head`` are distilled with the same
  loss from the teacher's final logits (``decode_<i>.loss_kd``,
  ``aux.loss_kd``) when ``distill_aux_head``.
* Deep supervision: auxiliary FCN heads on the student backbone stages in
  ``deep_supervision.stages`` (light: one 3x3 conv of 64 channels; full: the
  decode head's width and two convs), each trained by pixel KD from the
  teacher's final logits (``ds<i>.loss_kd``) and, with ``gt_weight > 0``,
  by mmseg's cross-entropy on the labels (``ds<i>.loss_ce``). They live in
  the wrapper and vanish at export.

Pixels whose label is the student decode head's ``ignore_index`` do not
count in the KD terms. The teacher runs ``extract_feat`` and its decode
heads' ``forward`` through :meth:`BaseDistiller.teacher_forward`: never its
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

from mmkd.deep_supervision.loop import DeepSupervision
from mmkd.registry import MODELS
from .base import BaseDistiller
from .builder import ModelSpec, load_model_cfg
from .capture import Capture


#: decode heads whose training forward gives dense class logits
DECODE_HEADS = ('FCNHead', 'PSPHead', 'ASPPHead', 'DepthwiseSeparableASPPHead',
                'UPerHead', 'SegformerHead', 'OCRHead')
#: segmentor types: how their decode heads are called
SEGMENTORS = ('EncoderDecoder', 'CascadeEncoderDecoder')


def _heads(model: nn.Module) -> list:
    heads = model.decode_head
    return list(heads) if isinstance(heads, nn.ModuleList) else [heads]


def check_supported(model: nn.Module, role: str) -> None:
    """Refuse, at build, a segmentor or decode head mmkd does not distil."""
    kind = type(model).__name__
    heads = [type(h).__name__ for h in _heads(model)] \
        if hasattr(model, 'decode_head') else []
    why = None
    if kind not in SEGMENTORS:
        why = f'segmentor {kind}'
    elif heads[-1] not in DECODE_HEADS:
        why = f'{kind} with final decode head {heads[-1]}' + (
            ' (query-based: Mask2Former / MaskFormer, planned separately)'
            if 'Mask' in heads[-1] and 'Former' in heads[-1] else
            ' (PointRend: its training forward predicts sampled points, '
            'not a dense map)' if heads[-1] == 'PointHead' else '')
    if why:
        raise ValueError(
            f'{role} {why} is not supported by mmkd.SegmentationDistiller; '
            f'supported: {", ".join(SEGMENTORS)} with final decode head '
            f'{", ".join(DECODE_HEADS)}')


def final_logits(model: nn.Module, feats) -> torch.Tensor:
    """A segmentor's final decode-head logits (a cascade's heads chained as
    in its own ``encode_decode``)."""
    heads = _heads(model)
    out = heads[0](feats)
    for head in heads[1:]:
        out = head(feats, out)
    return out


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
        deep_supervision (dict, optional): The shared contract
            (:class:`mmkd.deep_supervision.loop.DeepSupervision`:
            ``stages``, ``stage_weights``, ``mode``, ``gt_weight`` (default
            0: KD only), ``kd_weight``) plus ``channels`` and ``num_convs``
            of the FCN heads (light: 64 and 1; full: the decode head's
            ``channels`` and 2). Defaults to None (off).
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
        check_supported(self.student, 'student')
        check_supported(self.teacher, 'teacher')
        s_cls = _heads(self.student)[-1].num_classes
        t_cls = _heads(self.teacher)[-1].num_classes
        if s_cls != t_cls:
            raise ValueError('student and teacher differ in class count: '
                             f'student {s_cls}, teacher {t_cls}')
        unknown = set(distill or {}) - {'logits'}
        if unknown:
            raise KeyError(f'distill: unknown terms {sorted(unknown)} '
                           "(expected 'logits')")
        self.ignore_index = _heads(self.student)[-1].ignore_index
        self.kd_loss = None
        if distill:
            self.kd_loss = MODELS.build(
                self._with_ignore_index(dict(distill['logits'])))
        self.uses_teacher = self.kd_loss is not None
        self.distill_aux_head = distill_aux_head
        self.ds = None
        self.ds_heads = ModuleList()
        if deep_supervision:
            self._build_deep_supervision(student, dict(deep_supervision))
        self.restore_rng()

    @property
    def ds_weights(self) -> list:
        return self.ds.weights if self.ds else []

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

    def _build_deep_supervision(self, student: ModelSpec, cfg: dict) -> None:
        channels, _ = self.student_stages(64)
        self.ds = DeepSupervision(cfg, len(channels), 0.0,
                                  self.kd_loss is not None)
        model_cfg, scope, _ = load_model_cfg(student, self.default_scope)
        head = model_cfg.decode_head
        head = head[-1] if isinstance(head, (list, tuple)) else head
        light = self.ds.light
        for s in self.ds.stages:
            fcn = dict(
                type='FCNHead',
                in_channels=channels[s],
                in_index=s,
                channels=cfg.get('channels',
                                 64 if light else head.get('channels', 256)),
                num_convs=cfg.get('num_convs', 1 if light else 2),
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
        heads = _heads(student)
        aux = student.auxiliary_head if student.with_auxiliary_head else []
        aux = [(f'aux_{i}', h) for i, h in enumerate(aux)] \
            if isinstance(aux, nn.ModuleList) else \
            [('aux', aux)] if aux else []
        others = [(f'decode_{i}', h) for i, h in enumerate(heads[:-1])] + aux
        # mmseg's heads call their own forward() inside loss(), so the hooks
        # sit on their classifier (conv_seg, run as a module by cls_seg)
        with Capture() as cap:
            cap.output(student.backbone, 'stages')
            cap.output(heads[-1].conv_seg, 'decode')
            for name, head in others:
                cap.output(head.conv_seg, name)
            losses = student.loss(inputs, data_samples)
        t_logits = None
        if self.teacher_active:
            teacher = self.teacher
            t_logits = self.teacher_forward(
                lambda x: final_logits(teacher, teacher.extract_feat(x)),
                inputs, data_samples=data_samples)
        labels = torch.stack([d.gt_sem_seg.data for d in data_samples])

        def kd_terms(logits):
            return {'loss_kd': self.kd_loss(logits.float(), t_logits, labels)}

        kd = {}
        if t_logits is not None:
            kd['decode.loss_kd'] = kd_terms(cap['decode'])['loss_kd']
            if self.distill_aux_head:
                for name, _ in others:
                    kd[f'{name}.loss_kd'] = kd_terms(cap[name])['loss_kd']
        if self.ds is not None:

            def run(head, stage, with_gt):
                if not with_gt:
                    return head(cap['stages']), None
                with Capture() as c:
                    c.output(head.conv_seg, 'logits')
                    gt = head.loss(cap['stages'], data_samples,
                                   student.train_cfg)
                return c['logits'], gt

            gt, ds_kd = self.ds.losses(self.ds_heads, run, kd_terms,
                                       t_logits is not None)
            losses.update(gt)
            kd.update(ds_kd)
        losses.update(self.scaled(kd))
        return losses
