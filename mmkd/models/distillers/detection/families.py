"""Which mmdet 3.x detector families the detection distiller supports, and
what each one compares.

A family is supported when its detector computes its loss the standard way
(``SingleStageDetector.loss`` / ``TwoStageDetector.loss``, not overridden)
with a head listed here; the adapter says which head outputs are the
scores the detector ranks boxes by. Query-based detectors (DINO, two-stage
Deformable DETR) are listed by detector class (:data:`QUERY`, distilled by
:mod:`.query`). Everything else is refused when the model is built, naming
the family and listing the supported ones.
"""
from dataclasses import dataclass
from typing import List, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass(frozen=True)
class DenseFamily:
    """What KD compares on one dense head type.

    Args:
        name (str): The family, for messages and the support matrix.
        score (str): What the detector ranks boxes by: ``'logits'`` (sigmoid
            or softmax class logits, ``outs[0]``), ``'probs'`` (``outs[0]``
            are already probabilities: TOOD) or ``'logits*objectness'``
            (YOLOX: ``sigmoid(cls) * sigmoid(obj)``, objectness
            ``outs[2]``).
        box_distribution (bool): The head predicts box-side distributions
            (``outs[1]``, ``reg_max + 1`` bins): LD (``distill.box``)
            applies.
        mirrored (tuple[str]): Attributes of the student's head that hooks
            switch during training (YOLOX's ``use_l1``); the auxiliary heads
            follow them.
    """
    name: str
    score: str = 'logits'
    box_distribution: bool = False
    mirrored: Tuple[str, ...] = ()


#: dense head class name -> family
DENSE = {
    'RetinaHead': DenseFamily('RetinaNet'),
    'FCOSHead': DenseFamily('FCOS'),
    'ATSSHead': DenseFamily('ATSS'),
    'GFLHead': DenseFamily('GFL', box_distribution=True),
    'RTMDetHead': DenseFamily('RTMDet'),
    'RTMDetSepBNHead': DenseFamily('RTMDet'),
    'TOODHead': DenseFamily('TOOD', score='probs'),
    'YOLOXHead': DenseFamily(
        'YOLOX', score='logits*objectness', mirrored=('use_l1', )),
}

#: RoI head class name -> family (one-stage RoI heads and cascades)
TWO_STAGE = {
    'StandardRoIHead': 'Faster / Mask R-CNN',
    'CascadeRoIHead': 'Cascade (Mask) R-CNN',
    'HybridTaskCascadeRoIHead': 'HTC',
}


@dataclass(frozen=True)
class QueryFamily:
    """How a query-based detector makes decoder queries at given reference
    boxes (the shared distillation queries of :mod:`.query`).

    Args:
        name (str): The family, for messages and the support matrix.
        content (str): ``'embedding'`` (DINO: the learned content query of
            slot i, positions from the box) or ``'proposal'`` (two-stage
            Deformable DETR: content and position both from the box, as its
            ``pre_decoder`` makes them from proposals).
    """
    name: str
    content: str


#: query-based detector class name (exact: subclasses change the call
#: structure) -> family; both need ``as_two_stage`` (encoder proposals)
QUERY = {
    'DINO': QueryFamily('DINO', content='embedding'),
    'DeformableDETR': QueryFamily('Deformable DETR (two-stage)',
                                  content='proposal'),
}

#: families refused with a specific reason
REFUSED = {
    'DetectionTransformer': 'query-based DETR family other than DINO and '
    'two-stage Deformable DETR (DETR, Conditional / DAB-DETR, DDQ, ...): '
    "mmkd's shared distillation queries are built for those two detectors' "
    'encoder proposals and decoder call (exact classes only)',
    'MaskFormer': "mmdet's panoptic / instance Mask2Former and MaskFormer "
    "are not distilled (mmseg's semantic Mask2Former is, by "
    'mmkd.SegmentationDistiller)',
}


def supported_text() -> str:
    dense = sorted({f'{f.name} ({h})' for h, f in DENSE.items()})
    two = [f'{n} ({h})' for h, n in TWO_STAGE.items()]
    query = [f'{f.name} ({k})' for k, f in QUERY.items()]
    return ('supported: dense ' + ', '.join(dense) + '; two-stage ' +
            ', '.join(two) + '; query-based ' + ', '.join(query))


def _overrides_loss(detector: nn.Module, base: type) -> bool:
    return type(detector).loss is not base.loss


def family_of(detector: nn.Module, role: str):
    """``('dense', DenseFamily)``, ``('two_stage', name)`` or ``('query',
    QueryFamily)`` for a built mmdet detector, or a ValueError naming it and
    what is supported."""
    from mmdet.models.detectors import SingleStageDetector, TwoStageDetector
    kind = type(detector).__name__
    if kind in QUERY:
        if not getattr(detector, 'as_two_stage', False):
            raise ValueError(
                f'{role} {kind} with as_two_stage=False is not supported by '
                'mmkd.DetectionDistiller: its queries are learned embeddings '
                'with no encoder proposals to share as distillation queries; '
                'use the two-stage variant (as_two_stage=True, e.g. '
                'mmdet::deformable_detr/deformable-detr-refine-twostage_r50_'
                f'16xb2-50e_coco.py). {supported_text()}')
        return 'query', QUERY[kind]
    for base, why in REFUSED.items():
        if any(c.__name__ == base for c in type(detector).__mro__):
            raise ValueError(
                f'{role} {kind} is not supported by mmkd.DetectionDistiller: '
                f'{why}. {supported_text()}')
    if isinstance(detector, TwoStageDetector) and not _overrides_loss(
            detector, TwoStageDetector):
        head = type(detector.roi_head).__name__
        if head in TWO_STAGE:
            return 'two_stage', TWO_STAGE[head]
        what = f'{kind} with RoI head {head}'
    elif isinstance(detector, SingleStageDetector) and not _overrides_loss(
            detector, SingleStageDetector):
        head = type(detector.bbox_head).__name__
        if head in DENSE:
            return 'dense', DENSE[head]
        what = f'{kind} with head {head}'
    else:
        what = f'{kind} (its own loss())'
    raise ValueError(f'{role} {what} is not supported by '
                     f'mmkd.DetectionDistiller; {supported_text()}')


def _joint_logit(cls: torch.Tensor, obj: torch.Tensor) -> torch.Tensor:
    """The logit of ``sigmoid(cls) * sigmoid(obj)`` (YOLOX's score),
    computed in log space: ``log p - log(1 - p)``."""
    log_p = F.logsigmoid(cls) + F.logsigmoid(obj)
    log_p = log_p.clamp(max=-1e-6)  # p < 1: log(1 - p) stays finite
    return log_p - torch.log(-torch.expm1(log_p))


def score_logits(family: DenseFamily, outs: Sequence) -> List[torch.Tensor]:
    """Per level, the logits of the scores the detector ranks by, in the
    head's own ``(B, A*C, H, W)`` layout (fp32)."""
    cls = [c.float() for c in outs[0]]
    if family.score == 'logits':
        return cls
    if family.score == 'probs':
        eps = 1e-6
        return [torch.logit(c.clamp(eps, 1 - eps)) for c in cls]
    if family.score == 'logits*objectness':
        return [_joint_logit(c, o.float()) for c, o in zip(cls, outs[2])]
    raise ValueError(f'unknown score kind {family.score!r}')


def levels_of(head: nn.Module) -> Tuple[int, List[int], int]:
    """``(level count, strides, priors per location)`` of a dense head."""
    gen = head.prior_generator
    return (gen.num_levels, [s[0] for s in gen.strides],
            gen.num_base_priors[0] if isinstance(
                gen.num_base_priors, (list, tuple)) else gen.num_base_priors)


def cls_channels(head: nn.Module) -> int:
    """Classes per prior in the head's class maps."""
    channels = getattr(head, 'cls_out_channels', None)
    return head.num_classes if channels is None else channels
