"""Decoupled KD (DKD, Zhao et al., https://arxiv.org/abs/2203.08679).

With ``p = softmax(z / T)`` and ``g`` the ground-truth class:

* TCKD: KL between the binary distributions ``(p_t[g], 1 - p_t[g])`` and
  ``(p_s[g], 1 - p_s[g])``;
* NCKD: KL between the distributions over the non-target classes, obtained
  by subtracting 1000 from the ground-truth logit (after dividing by T)
  before the softmax;
* ``L = T^2 * mean_batch(alpha * TCKD + beta * NCKD)``, alpha = 1, beta = 2,
  T = 1 as in the VanillaKD baselines (https://arxiv.org/abs/2305.15781).

With mixup/cutmix targets ``(B, C)`` the ground truth is their argmax.
Teacher logits are detached.
"""
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from mmkd.registry import MODELS


def _kl_sum(log_ps: torch.Tensor, pt: torch.Tensor) -> torch.Tensor:
    """``sum p_t * (log p_t - log p_s)`` per row; ``0 log 0 = 0``."""
    return (torch.xlogy(pt, pt) - pt * log_ps).sum(-1)


def dkd_loss(student: torch.Tensor,
             teacher: torch.Tensor,
             target: torch.Tensor,
             alpha: float = 1.0,
             beta: float = 2.0,
             temperature: float = 1.0) -> torch.Tensor:
    """DKD between ``(B, C)`` logits; see the module docstring.

    Args:
        student (Tensor): Student logits ``(B, C)``.
        teacher (Tensor): Teacher logits ``(B, C)`` (detached here).
        target (Tensor): Hard labels ``(B,)`` or soft/mixed targets
            ``(B, C)`` (their argmax is the ground truth).
        alpha (float): Weight of TCKD. Defaults to 1.0.
        beta (float): Weight of NCKD. Defaults to 2.0.
        temperature (float): Softmax temperature T. Defaults to 1.0.

    Returns:
        Tensor: Scalar loss.
    """
    if student.shape != teacher.shape:
        raise ValueError(f'DKD: student logits {tuple(student.shape)} vs '
                         f'teacher logits {tuple(teacher.shape)}')
    if target.dim() == 2:
        target = target.argmax(dim=-1)
    if target.shape != student.shape[:1]:
        raise ValueError(f'DKD: target {tuple(target.shape)} does not fit '
                         f'logits {tuple(student.shape)} (want (B,) labels '
                         'or (B, C) soft targets)')
    gt = F.one_hot(target.long(), student.shape[-1]).to(torch.bool)
    zs = student / temperature
    zt = teacher.detach() / temperature

    # target class vs the rest: binary distributions (B, 2)
    ps, pt = zs.softmax(-1), zt.softmax(-1)
    bs = torch.stack([ps[gt], ps.masked_fill(gt, 0).sum(-1)], dim=-1)
    bt = torch.stack([pt[gt], pt.masked_fill(gt, 0).sum(-1)], dim=-1)
    tckd = _kl_sum(bs.log(), bt)

    # non-target classes only: the target logit pushed down by 1000
    log_ps_nt = F.log_softmax(zs - 1000.0 * gt, dim=-1)
    pt_nt = F.softmax(zt - 1000.0 * gt, dim=-1)
    nckd = _kl_sum(log_ps_nt, pt_nt)
    return (alpha * tckd + beta * nckd).mean() * temperature**2


@MODELS.register_module()
class DKDLoss(nn.Module):
    """Module form of :func:`dkd_loss`.

    Call as ``loss(student_logits, teacher_logits, target)``, the signature
    shared by mmkd's classification KD losses; DKD needs ``target``: hard
    labels ``(B,)`` or soft/mixed targets ``(B, C)``.

    Args:
        alpha (float): Weight of TCKD. Defaults to 1.0.
        beta (float): Weight of NCKD. Defaults to 2.0.
        temperature (float): Softmax temperature. Defaults to 1.0.
        loss_weight (float): Multiplier of the loss. Defaults to 1.0.
    """

    def __init__(self,
                 alpha: float = 1.0,
                 beta: float = 2.0,
                 temperature: float = 1.0,
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        self.alpha = alpha
        self.beta = beta
        self.temperature = temperature
        self.loss_weight = loss_weight

    def forward(self,
                student_logits: torch.Tensor,
                teacher_logits: torch.Tensor,
                target: Optional[torch.Tensor] = None) -> torch.Tensor:
        if target is None:
            raise ValueError('DKDLoss needs the ground truth: call it as '
                             'loss(student_logits, teacher_logits, target)')
        return self.loss_weight * dkd_loss(student_logits, teacher_logits,
                                           target, self.alpha, self.beta,
                                           self.temperature)
