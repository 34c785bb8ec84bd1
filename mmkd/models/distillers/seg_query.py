"""Query-based segmentors (mmseg's ``Mask2FormerHead``) for
:class:`~.segmentation.SegmentationDistiller`.

Mask2Former predicts, after each decoder layer, a set of queries: class
logits ``(B, Q, C + 1)`` (the last class is "no object") and mask logits
``(B, Q, h, w)``. Its semantic inference (mmseg's
``Mask2FormerHead.predict``) combines them over the queries::

    p(c | x) = sum_q softmax(cls_q)[c] * sigmoid(mask_q)(x),  c < C

which is a dense per-pixel class map that needs no query matching. mmkd
distils the class distribution of that map, normalised over the classes at
each pixel (:func:`semantic_log_probs`), with the same pixel-wise losses as
the dense heads' logits (``mmkd.PixelKDLoss``, ``mmkd.ChannelWiseDivergence``).

mmseg's ``Mask2FormerHead.loss`` calls the head as a module
(``self(x, batch_data_samples)``), so a forward hook on the head keeps the
predictions of every decoder layer (:func:`layer_predictions`).
"""
from typing import List, NamedTuple, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F

#: final decode heads whose forward returns per-layer query predictions
QUERY_HEADS = ('Mask2FormerHead', )


class QueryPrediction(NamedTuple):
    """One decoder layer's prediction: class logits ``(B, Q, C + 1)`` and
    mask logits ``(B, Q, h, w)``."""
    cls: torch.Tensor
    mask: torch.Tensor


#: a dense head's logits ``(B, C, H, W)`` or a query head's prediction
Prediction = Union[torch.Tensor, QueryPrediction]


def is_query_head(head: nn.Module) -> bool:
    """Whether ``head`` is one of :data:`QUERY_HEADS`."""
    return type(head).__name__ in QUERY_HEADS


def num_decoder_layers(head: nn.Module) -> int:
    """How many transformer decoder layers a query head has: it predicts
    once before them (mmdet's ``d0``) and after each one, so its
    intermediate predictions are ``d0 .. d<L-1>`` and the last is final."""
    return head.num_transformer_decoder_layers


def layer_predictions(output: Tuple[Sequence, Sequence]
                      ) -> List[QueryPrediction]:
    """The head's ``forward`` output ``(cls_pred_list, mask_pred_list)`` as
    one :class:`QueryPrediction` per layer, the final one last."""
    cls_list, mask_list = output
    return [QueryPrediction(c, m) for c, m in zip(cls_list, mask_list)]


def map_size(pred: Prediction) -> Tuple[int, int]:
    """Spatial size of the class map ``pred`` gives before any resize."""
    x = pred.mask if isinstance(pred, QueryPrediction) else pred
    return tuple(x.shape[-2:])


def semantic_log_probs(cls_logits: torch.Tensor, mask_logits: torch.Tensor,
                       size: Tuple[int, int] = None) -> torch.Tensor:
    """Log of the per-pixel class distribution of Mask2Former's semantic
    inference, normalised over the classes.

    ``p(c) = sum_q softmax(cls_q)[c] * sigmoid(mask_q)`` (``c`` without
    "no object"), then ``log(p(c) / sum_c' p(c'))``. Computed in fp32
    (autocast off) and scale-free: with ``s_q = log sigmoid(mask_q) +
    log(1 - p_q(no object))`` and ``m = max_q s_q`` at each pixel,
    ``p(c) = e^m * sum_q softmax(cls_q[:C])[c] * e^(s_q - m)``; the sum
    over classes of the second factor is at least 1, so no pixel's
    distribution underflows, whatever the confidence of the masks.

    Args:
        cls_logits (Tensor): ``(B, Q, C + 1)`` class logits.
        mask_logits (Tensor): ``(B, Q, h, w)`` mask logits.
        size (tuple, optional): Output size; the mask logits are resized to
            it first (bilinear, ``align_corners=False``, as the head's
            ``predict``). Defaults to None (the masks' size).

    Returns:
        Tensor: ``(B, C, H, W)`` log-probabilities.
    """
    if cls_logits.shape[:2] != mask_logits.shape[:2]:
        raise ValueError(
            f'query prediction: class logits {tuple(cls_logits.shape)} and '
            f'mask logits {tuple(mask_logits.shape)} differ in batch or '
            'query count')
    with torch.autocast(mask_logits.device.type, enabled=False):
        cls_logits, mask_logits = cls_logits.float(), mask_logits.float()
        if size is not None and tuple(mask_logits.shape[-2:]) != tuple(size):
            mask_logits = F.interpolate(
                mask_logits, size=size, mode='bilinear', align_corners=False)
        log_fg = torch.logsumexp(
            F.log_softmax(cls_logits, dim=-1)[..., :-1], dim=-1)
        score = F.logsigmoid(mask_logits) + log_fg[..., None, None]
        # the shift cancels in the normalisation below: no gradient needed
        top = score.amax(dim=1, keepdim=True).detach()
        given_fg = F.softmax(cls_logits[..., :-1], dim=-1)
        mass = torch.einsum('bqc,bqhw->bchw', given_fg, (score - top).exp())
        tiny = torch.finfo(mass.dtype).tiny
        return F.log_softmax(mass.clamp_min(tiny).log(), dim=1)


def class_map(pred: Prediction, size: Tuple[int, int]) -> torch.Tensor:
    """What the pixel losses compare: a dense head's logits as they are
    (the losses resize them), a query prediction's
    :func:`semantic_log_probs` at ``size``."""
    if isinstance(pred, QueryPrediction):
        return semantic_log_probs(pred.cls, pred.mask, size)
    return pred.float()
