"""Query-based detectors (DETR family): DINO, two-stage Deformable DETR.

A DETR-family prediction is a query with no fixed location, so the
student's query i and the teacher's query i answer different questions.
Distillation therefore uses shared *distillation queries*: one set of
reference boxes per image, the teacher's top-k encoder proposals (its own
``pre_decoder``) plus some random boxes, decoded by EACH model's decoder
over ITS OWN encoder memory (:func:`decode`). Query i then asks both models
the same question ("what is in this box?"), whatever their backbones,
feature levels, query or layer counts. KD compares, per query, the class
logits (binary KL per class, as the sigmoid head's own loss:
``mmkd.SigmoidKDLoss``) and the boxes (L1 on normalised ``cx, cy, w, h``
and GIoU, each query weighted by the teacher's top class score), at the
student's final decoder layer (``loss_kd_<term>``) and, with
``deep_supervision``, at its intermediate layers
(``ds<i>.loss_kd_<term>``), all against the teacher's final layer: the
decoder layers are the levels of multi-level deep supervision.

The student's task losses come from its own ``loss()`` (Hungarian matching,
denoising queries, encoder proposals), unchanged. The distillation queries
run in a separate pass of the student's decoder, after that loss and on the
encoder memory it computed (captured with a hook on the decoder's call):
they never join the matching and no matching or denoising query attends to
them (they attend to each other only). The teacher runs ``extract_feat``,
``pre_transformer``, ``forward_encoder``, ``pre_decoder`` (proposals) and
its decoder and head on the distillation queries, never its loss.
"""
from typing import Dict, Optional, Sequence, Tuple

import torch
import torch.nn as nn

from mmkd.deep_supervision.loop import DeepSupervision
from mmkd.losses import SigmoidKDLoss
from ..capture import Capture
from .families import QUERY

#: the KD terms of a query-based pair
TERMS = ('cls', 'bbox', 'iou')
#: defaults of ``distill_queries``
DEFAULT_QUERIES = dict(num_proposals=300, num_random=100,
                       random_wh=(0.05, 0.5))


# ------------------------------------------------------------ build checks
def check_pair(student: nn.Module, teacher: nn.Module) -> None:
    """Build-time checks of a query-based pair, both sides' values named.
    Backbones, feature levels, query and layer counts may differ: the models
    share only the distillation queries' boxes."""
    sh, th = student.bbox_head, teacher.bbox_head
    s_sigmoid = getattr(sh.loss_cls, 'use_sigmoid', False)
    checks = [
        ('class count', sh.num_classes, th.num_classes),
        ('sigmoid classification (loss_cls.use_sigmoid)', s_sigmoid,
         getattr(th.loss_cls, 'use_sigmoid', False)),
    ]
    for what, a, b in checks:
        if a != b:
            raise ValueError(f'student and teacher differ in {what}: '
                             f'student {a}, teacher {b}')
    if not s_sigmoid:
        raise ValueError('query-based KD compares sigmoid class scores; the '
                         'student head is not a sigmoid classifier')
    for role, det in (('student', student), ('teacher', teacher)):
        if not det.decoder.return_intermediate:
            raise ValueError(
                f'{role} decoder has return_intermediate=False: KD reads '
                'every decoder layer\'s predictions (mmdet\'s DETR heads '
                'need them too); set it True')


def check_losses(kd_losses: nn.ModuleDict) -> None:
    """``distill.cls`` must be a sigmoid KD (DETR heads score each class
    with its own sigmoid)."""
    fn = kd_losses['cls'] if 'cls' in kd_losses else None
    if fn is not None and not isinstance(fn, SigmoidKDLoss):
        raise ValueError(
            f'distill.cls: {type(fn).__name__} for a query-based detector; '
            'its head scores each class with a sigmoid (focal loss): use '
            "type='mmkd.SigmoidKDLoss'")


def queries_cfg(cfg: Optional[dict], teacher: nn.Module) -> dict:
    """``distill_queries`` validated, defaults filled in."""
    unknown = set(cfg or {}) - set(DEFAULT_QUERIES)
    if unknown:
        raise KeyError(f'distill_queries: unknown keys {sorted(unknown)} '
                       f'(expected {sorted(DEFAULT_QUERIES)})')
    cfg = dict(DEFAULT_QUERIES, **(cfg or {}))
    k, r = cfg['num_proposals'], cfg['num_random']
    if not all(isinstance(n, int) and n >= 0 for n in (k, r)) or k + r == 0:
        raise ValueError(
            'distill_queries: num_proposals and num_random must be integers '
            f'>= 0, not both 0; got num_proposals={k!r}, num_random={r!r}')
    if k > teacher.num_queries:
        raise ValueError(
            f'distill_queries.num_proposals={k} is more than the teacher\'s '
            f'num_queries={teacher.num_queries} (its pre_decoder keeps that '
            'many encoder proposals)')
    lo, hi = cfg['random_wh']
    if not 0 < lo <= hi <= 1:
        raise ValueError('distill_queries.random_wh: (min, max) box size '
                         f'with 0 < min <= max <= 1, got {cfg["random_wh"]}')
    cfg['random_wh'] = (float(lo), float(hi))
    return cfg


def deep_supervision(student: nn.Module, cfg: dict,
                     has_kd: bool) -> DeepSupervision:
    """The shared contract with the student's intermediate decoder layers
    as the stages (0 .. num_layers - 2; the last layer has the main KD)."""
    extra = sorted(set(cfg) & {'channels', 'head'})
    if extra or cfg.get('mode', 'light') != 'light':
        raise ValueError(
            f'deep_supervision: {extra or "mode"} sizes auxiliary heads; a '
            'query-based student has none (its decoder layers are the '
            "levels): remove it (mode stays 'light')")
    if cfg.get('gt_weight', 0):
        raise ValueError(
            'deep_supervision.gt_weight: the decoder layers of a query-based '
            "student are trained on the labels by its own loss already "
            '(d<i>.loss_cls, d<i>.loss_bbox, ...); leave gt_weight at 0')
    if not has_kd:
        raise ValueError(
            'deep_supervision on a query-based student distils its '
            "intermediate decoder layers from the teacher's final layer and "
            'needs distill terms')
    layers = student.decoder.num_layers
    if layers < 2:
        raise ValueError('deep_supervision: the student decoder has 1 '
                         'layer, no intermediate layer to supervise')
    return DeepSupervision(
        cfg, layers - 1, 0.0, has_kd,
        stage_names=[f'decoder layer {i}' for i in range(layers - 1)],
        level='intermediate decoder layer')


# ------------------------------------------------------------ decoding
def queries_at(detector: nn.Module, boxes: torch.Tensor) -> dict:
    """``forward_decoder`` query inputs of ``detector`` at reference
    ``boxes`` ``(B, K, 4)`` (normalised ``cx, cy, w, h``).

    DINO: the learned content query of slot ``i mod num_queries`` for box i
    (slot i holds the i-th ranked proposal in DINO itself), positions from
    the box in its decoder. Two-stage Deformable DETR: content and position
    from the box, as its ``pre_decoder`` makes them from proposals.
    """
    from mmdet.models.layers import inverse_sigmoid
    if QUERY[type(detector).__name__].content == 'embedding':
        slots = torch.arange(boxes.shape[1], device=boxes.device)
        query = detector.query_embedding.weight[slots % detector.num_queries]
        return dict(query=query.unsqueeze(0).repeat(boxes.shape[0], 1, 1),
                    reference_points=boxes)
    pos = detector.get_proposal_pos_embed(inverse_sigmoid(boxes))
    pos = detector.pos_trans_norm(detector.pos_trans_fc(pos))
    query_pos, query = torch.split(pos, detector.embed_dims, dim=2)
    return dict(query=query, query_pos=query_pos, reference_points=boxes)


def decode(detector: nn.Module, boxes: torch.Tensor,
           memory: dict) -> Tuple[torch.Tensor, torch.Tensor]:
    """Every decoder layer's class logits ``(L, B, K, C)`` and boxes
    ``(L, B, K, 4)`` of ``detector`` for queries at ``boxes``, over its
    encoder ``memory`` (``memory``, ``memory_mask``, ``spatial_shapes``,
    ``level_start_index``, ``valid_ratios``); no denoising queries, no
    attention mask: the queries see each other only."""
    out = detector.forward_decoder(**queries_at(detector, boxes), **memory)
    return detector.bbox_head(out['hidden_states'], out['references'])


def student_memory(decoder_kwargs: dict) -> dict:
    """The encoder memory and its layout from the student decoder's call
    in its own ``loss()``."""
    kw = decoder_kwargs
    return dict(memory=kw['value'], memory_mask=kw['key_padding_mask'],
                spatial_shapes=kw['spatial_shapes'],
                level_start_index=kw['level_start_index'],
                valid_ratios=kw['valid_ratios'])


def random_boxes(num_images: int, cfg: dict,
                 device: torch.device) -> torch.Tensor:
    """``(B, num_random, 4)`` boxes: centres uniform over the image, width
    and height uniform in ``random_wh`` (fractions of the image)."""
    lo, hi = cfg['random_wh']
    r = torch.rand(num_images, cfg['num_random'], 4, device=device)
    return torch.cat([r[..., :2], lo + (hi - lo) * r[..., 2:]], -1)


def teacher_predictions(teacher: nn.Module, num_proposals: int,
                        data_samples: list):
    """``run(x, random boxes) -> (boxes, class logits, boxes)`` for
    :meth:`BaseDistiller.teacher_forward`: the distillation queries (the
    teacher's top ``num_proposals`` encoder proposals, then the random
    boxes) and the teacher's final-layer predictions on them."""

    def run(x: torch.Tensor, rand: torch.Tensor):
        enc_in, dec_in = teacher.pre_transformer(teacher.extract_feat(x),
                                                 data_samples)
        enc_out = teacher.forward_encoder(**enc_in)
        boxes = rand
        if num_proposals:
            proposals = teacher.pre_decoder(**enc_out)[0]['reference_points']
            boxes = torch.cat(
                [proposals[:, :num_proposals].to(rand.dtype), rand], 1)
        cls, coords = decode(teacher, boxes,
                             dict(dec_in, memory=enc_out['memory']))
        return boxes, cls[-1], coords[-1]

    return run


# ------------------------------------------------------------ losses
def query_kd(d, s_cls: torch.Tensor, s_box: torch.Tensor,
             teacher_out: Sequence[torch.Tensor]) -> Dict[str, torch.Tensor]:
    """KD terms ``loss_kd_<term>`` of one student decoder layer's logits
    ``(B, K, C)`` and boxes ``(B, K, 4)`` against ``teacher_out = (teacher
    logits, teacher boxes, per-query weight (B*K,))``: class KD on every
    query; L1 and GIoU weighted by the teacher's top class score, averaged
    by the weights' sum."""
    from mmdet.structures.bbox import bbox_cxcywh_to_xyxy
    t_cls, t_box, weight = teacher_out
    if s_cls.shape != t_cls.shape:
        raise RuntimeError(f'query KD: student logits {tuple(s_cls.shape)} '
                           f'vs teacher {tuple(t_cls.shape)}')
    s = s_box.float().flatten(0, 1)
    t = t_box.flatten(0, 1)
    norm = weight.sum()
    losses = {}
    for term, fn in d.kd_losses.items():
        if term == 'cls':
            loss = fn(s_cls.float(), t_cls)
        elif term == 'bbox':
            loss = fn(s, t, weight=weight[:, None], avg_factor=norm)
        else:
            loss = fn(bbox_cxcywh_to_xyxy(s), bbox_cxcywh_to_xyxy(t),
                      weight=weight, avg_factor=norm)
        losses[f'loss_kd_{term}'] = loss
    return losses


def loss(d, inputs: torch.Tensor, data_samples: list) -> dict:
    """The student's own loss plus KD on the distillation queries at its
    final decoder layer and, with deep supervision, its intermediate
    ones."""
    student = d.student
    with Capture() as cap:
        cap.keywords(student.decoder, 'decoder')
        losses = student.loss(inputs, data_samples)
    if not d.teacher_active:
        return losses
    rand = random_boxes(inputs.shape[0], d.distill_queries, inputs.device)
    boxes, t_cls, t_box = d.teacher_forward(
        teacher_predictions(d.teacher, d.distill_queries['num_proposals'],
                            data_samples),
        inputs, rand, data_samples=data_samples)
    s_cls, s_box = decode(student, boxes, student_memory(cap['decoder']))
    teacher_out = (t_cls, t_box, t_cls.sigmoid().max(-1).values.flatten())
    kd = query_kd(d, s_cls[-1], s_box[-1], teacher_out)
    if d.ds is not None:
        # the "heads" are the intermediate layers' indices themselves
        _, ds_kd = d.ds.losses(
            d.ds.stages,
            lambda layer, stage, with_gt: ((s_cls[stage], s_box[stage]),
                                           None),
            lambda out: query_kd(d, *out, teacher_out), True)
        kd.update(ds_kd)
    losses.update(d.scaled(kd))
    return losses
