"""Vanilla KD (Hinton et al., https://arxiv.org/abs/1503.02531).

``L = T^2 * mean( sum_c p_t(c) * (log p_t(c) - log p_s(c)) )`` with
``p = softmax(z / T)`` over ``dim``; the mean runs over every other element
(the batch for classification logits, batch x locations for dense ones).
Teacher logits are detached. This is the form of the VanillaKD code
(https://github.com/Hao840/vanillaKD).

With ``weight``, the mean is a true weighted mean, ``sum(w * kl) / sum(w)``
(0 when every weight is 0). ``class_reduction='mean'`` averages the KL over
the class dimension instead of summing it, as Localization Distillation
(https://arxiv.org/abs/2102.12252) does over the bins of a box side.
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
            weight: Optional[torch.Tensor] = None,
            class_reduction: str = 'sum',
            avg_factor: Optional[float] = None) -> torch.Tensor:
    """Softmax KD between logits; see the module docstring.

    Args:
        student (Tensor): Student logits.
        teacher (Tensor): Teacher logits, same shape (detached here).
        temperature (float): Softmax temperature T. Defaults to 1.0.
        dim (int): The class dimension. Defaults to -1.
        weight (Tensor, optional): Per-element weights of the KL map (the
            shape without ``dim``); the result is then the weighted mean
            ``sum(w * kl) / sum(w)``. Defaults to None (plain mean).
        class_reduction (str): ``'sum'`` (the KL divergence) or ``'mean'``
            (LD's average over the bins) over ``dim``. Defaults to ``'sum'``.
        avg_factor (float, optional): Divide the (weighted) sum by this
            instead of taking the mean, as mmdet's losses do (LD divides by
            4, the sides of a box). Defaults to None.

    Returns:
        Tensor: Scalar loss.
    """
    log_ps = F.log_softmax(student / temperature, dim=dim)
    log_pt = F.log_softmax(teacher.detach() / temperature, dim=dim)
    kl = (log_pt.exp() * (log_pt - log_ps)).sum(dim)
    if class_reduction == 'mean':
        kl = kl / student.shape[dim]
    elif class_reduction != 'sum':
        raise ValueError(f"kd_loss: class_reduction must be 'sum' or 'mean', "
                         f'got {class_reduction!r}')
    if avg_factor is not None:
        kl = kl if weight is None else kl * weight
        return kl.sum() / avg_factor * temperature**2
    if weight is None:
        return kl.mean() * temperature**2
    return weighted_mean(kl, weight) * temperature**2


def weighted_mean(values: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``sum(w * v) / sum(w)``; 0 (still part of the graph) when ``sum(w)``
    is 0, e.g. a batch without any weighted location."""
    # the clamp only matters when every weight is 0 (then so is the sum)
    return (values * weight).sum() / weight.sum().clamp(
        min=torch.finfo(values.dtype).tiny)


@MODELS.register_module()
class KDLoss(nn.Module):
    """Module form of :func:`kd_loss`.

    Call as ``loss(student, teacher, weight=None, avg_factor=None)`` (dense
    maps) or, like the other classification KD losses,
    ``loss(student_logits, teacher_logits, target=target)``; ``target`` is
    not used.

    Args:
        temperature (float): Softmax temperature. Defaults to 1.0.
        loss_weight (float): Multiplier of the loss. Defaults to 1.0.
        dim (int): The class dimension. Defaults to -1.
        class_reduction (str): ``'sum'`` or ``'mean'`` over the classes (see
            :func:`kd_loss`). Defaults to ``'sum'``.
    """

    def __init__(self,
                 temperature: float = 1.0,
                 loss_weight: float = 1.0,
                 dim: int = -1,
                 class_reduction: str = 'sum') -> None:
        super().__init__()
        if class_reduction not in ('sum', 'mean'):
            raise ValueError("KDLoss: class_reduction must be 'sum' or "
                             f"'mean', got {class_reduction!r}")
        self.temperature = temperature
        self.loss_weight = loss_weight
        self.dim = dim
        self.class_reduction = class_reduction

    def forward(self,
                student: torch.Tensor,
                teacher: torch.Tensor,
                weight: Optional[torch.Tensor] = None,
                *,
                avg_factor: Optional[float] = None,
                target: Optional[torch.Tensor] = None) -> torch.Tensor:
        return self.loss_weight * kd_loss(student, teacher, self.temperature,
                                          self.dim, weight,
                                          self.class_reduction, avg_factor)
