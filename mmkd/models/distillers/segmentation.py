"""Distillation for MMSegmentation 1.x segmentors.

Supported: ``EncoderDecoder`` (FCN, PSPNet, DeepLabV3(+), UPerNet,
SegFormer, ...) and ``CascadeEncoderDecoder`` (OCRNet), with the decode
heads in :data:`DECODE_HEADS`, and ``EncoderDecoder`` with a query head of
:data:`~.seg_query.QUERY_HEADS` (Mask2Former); anything else is refused at
build, with that list.

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

* Query-based heads (Mask2Former, :mod:`.seg_query`): what is compared is
  the per-pixel class distribution of the head's semantic inference
  (class probabilities x mask probabilities summed over the queries,
  normalised over the classes), for the final decoder layer
  (``decode.loss_kd``) and, as deep supervision, for the intermediate
  decoder layers listed in ``deep_supervision.stages`` (``ds<i>.loss_kd``),
  all from the teacher's final map. No query matching is needed and no
  auxiliary head is added: the decoder layers are the levels.

Pixels whose label is the student decode head's ``ignore_index`` do not
count in the KD terms. The teacher runs ``extract_feat`` and its decode
heads' ``forward`` through :meth:`BaseDistiller.teacher_forward`: never its
losses, and not at all while no distillation term is active. Student and
teacher may differ in backbone, channels, output stride and head kind (a
Mask2Former teacher for a dense student and the reverse); their class
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
from .seg_query import (QUERY_HEADS, Prediction, class_map, is_query_head,
                        layer_predictions, map_size, num_decoder_layers)


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
    elif heads[-1] in QUERY_HEADS and kind != 'EncoderDecoder':
        why = f'{kind} with final decode head {heads[-1]} (a query head ' \
            'is supported in an EncoderDecoder only)'
    elif heads[-1] not in DECODE_HEADS + QUERY_HEADS:
        why = f'{kind} with final decode head {heads[-1]}' + (
            ' (query-based MaskFormer: its forward pads by the image metas '
            'and returns stacked layers; Mask2FormerHead is supported)'
            if heads[-1] == 'MaskFormerHead' else
            ' (PointRend: its training forward predicts sampled points, '
            'not a dense map)' if heads[-1] == 'PointHead' else '')
    if why:
        raise ValueError(
            f'{role} {why} is not supported by mmkd.SegmentationDistiller; '
            f'supported: {", ".join(SEGMENTORS)} with final decode head '
            f'{", ".join(DECODE_HEADS)}; EncoderDecoder with '
            f'{", ".join(QUERY_HEADS)}')


def final_prediction(model: nn.Module, feats,
                     data_samples: Optional[list] = None) -> Prediction:
    """A segmentor's final prediction: its decode-head logits (a cascade's
    heads chained as in its own ``encode_decode``) or, for a query head,
    the last decoder layer's :class:`~.seg_query.QueryPrediction`."""
    heads = _heads(model)
    if is_query_head(heads[-1]):
        # mmdet's Mask2FormerHead.forward takes the samples but reads only
        # the features
        return layer_predictions(heads[-1](feats, data_samples))[-1]
    out = heads[0](feats)
    for head in heads[1:]:
        out = head(feats, out)
    return out


def final_logits(model: nn.Module, feats,
                 data_samples: Optional[list] = None) -> torch.Tensor:
    """The map the KD terms compare for a segmentor's final prediction, at
    its own size: decode-head logits, or a query head's per-pixel class
    log-probabilities (:func:`~.seg_query.semantic_log_probs`)."""
    pred = final_prediction(model, feats, data_samples)
    return class_map(pred, map_size(pred))


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
            ``channels`` and 2). For a query (Mask2Former) student the
            levels are its decoder's intermediate predictions instead:
            ``stages`` index ``d0 .. d<L-1>`` (mmdet's names; ``d0`` comes
            before the first decoder layer), no head is added, and only
            ``stages``, ``stage_weights`` and ``kd_weight`` apply (the
            layers' label losses are the student's own). Defaults to None
            (off).
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
        self.query_student = is_query_head(_heads(self.student)[-1])
        self.ds = None
        self.ds_heads = ModuleList()
        if deep_supervision and self.query_student:
            self._build_layer_supervision(dict(deep_supervision))
        elif deep_supervision:
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

    def _build_layer_supervision(self, cfg: dict) -> None:
        """Deep supervision of a query student: its intermediate decoder
        predictions, distilled from the teacher's final map."""
        head = _heads(self.student)[-1]
        kind = type(head).__name__
        extra = sorted({'mode', 'channels', 'num_convs'} & set(cfg))
        if extra:
            raise ValueError(
                f'deep_supervision: {extra} size auxiliary heads, but a '
                f'{kind} student adds none (its decoder layers are the '
                'levels); give stages, stage_weights and kd_weight only')
        if cfg.get('gt_weight', 0):
            raise ValueError(
                f'deep_supervision.gt_weight is {cfg["gt_weight"]}, but a '
                f'{kind} student trains its decoder layers on the labels '
                'itself (decode.d<i>.loss_cls / loss_mask / loss_dice, '
                'weighted in its decode_head config); set gt_weight to 0')
        layers = num_decoder_layers(head)
        self.ds = DeepSupervision(
            cfg, layers, 0.0, self.kd_loss is not None,
            stage_names=[f'd{i}' for i in range(layers)],
            level='an intermediate decoder prediction')

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

    def _other_heads(self) -> list:
        """``(name, head)`` of the heads distilled besides the final one:
        a cascade's earlier heads and the auxiliary heads."""
        student = self.student
        aux = student.auxiliary_head if student.with_auxiliary_head else []
        aux = [(f'aux_{i}', h) for i, h in enumerate(aux)] \
            if isinstance(aux, nn.ModuleList) else \
            [('aux', aux)] if aux else []
        return [(f'decode_{i}', h)
                for i, h in enumerate(_heads(student)[:-1])] + aux

    def loss(self, inputs: torch.Tensor,
             data_samples: list) -> Dict[str, torch.Tensor]:
        student = self.student
        final = _heads(student)[-1]
        others = self._other_heads()
        # mmseg's heads call their own forward() inside loss(), so the hooks
        # sit on their classifier (conv_seg, run as a module by cls_seg); a
        # query head is called as a module and gives every decoder layer's
        # prediction, the final one last
        with Capture() as cap:
            cap.output(student.backbone, 'stages')
            if self.query_student:
                cap.output(final, 'decode', layer_predictions)
            else:
                cap.output(final.conv_seg, 'decode')
            for name, head in others:
                cap.output(head.conv_seg, name)
            losses = student.loss(inputs, data_samples)
        s_preds = cap['decode'] if self.query_student else [cap['decode']]
        t_pred = None
        if self.teacher_active:
            teacher = self.teacher
            t_pred = self.teacher_forward(
                lambda x: final_prediction(teacher, teacher.extract_feat(x),
                                           data_samples),
                inputs, data_samples=data_samples)
        kd = {}
        if t_pred is not None:
            kd_terms = self._kd_terms(t_pred, s_preds[-1], data_samples)
            kd['decode.loss_kd'] = kd_terms(s_preds[-1])['loss_kd']
            if self.distill_aux_head:
                for name, _ in others:
                    kd[f'{name}.loss_kd'] = kd_terms(cap[name])['loss_kd']
        if self.query_student and self.ds is not None and t_pred is not None:
            # the levels are the decoder's own predictions: nothing to run
            _, ds_kd = self.ds.losses(
                [s_preds[s] for s in self.ds.stages],
                lambda pred, stage, with_gt: (pred, None), kd_terms, True)
            kd.update(ds_kd)
        elif self.ds is not None and not self.query_student:
            gt, ds_kd = self._stage_supervision(
                cap['stages'], data_samples,
                kd_terms if t_pred is not None else None)
            losses.update(gt)
            kd.update(ds_kd)
        losses.update(self.scaled(kd))
        return losses

    def _kd_terms(self, t_pred: Prediction, s_final: Prediction,
                  data_samples: list):
        """``kd(student prediction) -> {'loss_kd': ...}`` against the
        teacher's final map. Query predictions become class maps at the
        larger of the two final maps' sizes (their mask logits resized, as
        the head's ``predict`` does); dense logits are resized by the
        loss."""
        size = max(map_size(t_pred), map_size(s_final),
                   key=lambda s: s[0] * s[1])
        t_map = class_map(t_pred, size)
        labels = torch.stack([d.gt_sem_seg.data for d in data_samples])

        def kd_terms(pred: Prediction) -> Dict[str, torch.Tensor]:
            return {'loss_kd': self.kd_loss(class_map(pred, size), t_map,
                                            labels)}

        return kd_terms

    def _stage_supervision(self, stages, data_samples: list, kd_terms):
        """The FCN heads on the student's backbone stages (label losses
        when ``gt_weight``, KD when the teacher ran)."""

        def run(head, stage, with_gt):
            if not with_gt:
                return head(stages), None
            with Capture() as c:
                c.output(head.conv_seg, 'logits')
                gt = head.loss(stages, data_samples, self.student.train_cfg)
            return c['logits'], gt

        return self.ds.losses(self.ds_heads, run, kd_terms,
                              kd_terms is not None)
