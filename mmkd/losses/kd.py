"""Vanilla KD (Hinton et al., https://arxiv.org/abs/1503.02531).

``L = T^2 * mean( sum_c p_t(c) * (log p_t(c) - log p_s(c)) )`` with
``p = softmax(z / T)`` over ``dim``; the mean runs over every other element
(the batch for classification logits, batch x locations for dense ones).
Teacher logits are detached. This is the form of the VanillaKD code
(https://github.com/Hao840/vanillaKD).
"""
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from mmkd.registry import MODELS


def kd_loss(student: torch.Tensor,
            teacher: torch.Tensor,
            temperature: float = 1.0,
            dim: int = -1,
            weight: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Softmax KD between logits; see the module docstring.

    Args:
        student (Tensor): Student logits.
        teacher (Tensor): Teacher logits, same shape (detached here).
        temperature (float): Softmax temperature T. Defaults to 1.0.
        dim (int): The class dimension. Defaults to -1.
        weight (Tensor, optional): Per-element weights of the KL map (the
            shape without ``dim``); the result is then
            ``sum(w * kl) / max(sum(w), 1)``. Defaults to None (plain mean).

    Returns:
        Tensor: Scalar loss.
    """
    log_ps = F.log_softmax(student / temperature, dim=dim)
    log_pt = F.log_softmax(teacher.detach() / temperature, dim=dim)
    kl = (log_pt.exp() * (log_pt - log_ps)).sum(dim)
    if weight is None:
        return kl.mean() * temperature**2
    return (kl * weight).sum() / weight.sum().clamp(min=1) * temperature**2


@MODELS.register_module()
class KDLoss(nn.Module):
    """Module form of :func:`kd_loss`.

    Call as ``loss(student, teacher, weight=None)`` (dense maps) or, like the
    other classification KD losses, ``loss(student_logits, teacher_logits,
    target=target)``; ``target`` is not used.

    Args:
        temperature (float): Softmax temperature. Defaults to 1.0.
        loss_weight (float): Multiplier of the loss. Defaults to 1.0.
        dim (int): The class dimension. Defaults to -1.
    """

    def __init__(self,
                 temperature: float = 1.0,
                 loss_weight: float = 1.0,
                 dim: int = -1) -> None:
        super().__init__()
        self.temperature = temperature
        self.loss_weight = loss_weight
        self.dim = dim

    def forward(self,
                student: torch.Tensor,
                teacher: torch.Tensor,
                weight: Optional[torch.Tensor] = None,
                *,
                target: Optional[torch.Tensor] = None) -> torch.Tensor:
        return self.loss_weight * kd_loss(student, teacher, self.temperature,
                                          self.dim, weight)
