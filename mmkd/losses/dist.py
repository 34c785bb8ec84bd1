"""DIST: KD from a stronger teacher (Huang et al.).

Paper: https://arxiv.org/abs/2205.10536.

With ``y = softmax(z / tau)`` over classes and ``rho`` the Pearson
correlation of two vectors:

* inter-class relation: ``1 - mean_b rho(y_s[b, :], y_t[b, :])`` (rows);
* intra-class relation: ``1 - mean_c rho(y_s[:, c], y_t[:, c])`` (each
  class across the batch);
* ``L = tau^2 * (beta * inter + gamma * intra)``, beta = gamma = tau = 1.

Teacher logits are detached.
"""
from typing import Optional

import torch
import torch.nn as nn

from mmkd.registry import MODELS


def _pearson_rows(a: torch.Tensor, b: torch.Tensor,
                  eps: float = 1e-8) -> torch.Tensor:
    """Pearson correlation of matching rows of two ``(N, D)`` tensors."""
    a = a - a.mean(-1, keepdim=True)
    b = b - b.mean(-1, keepdim=True)
    return (a * b).sum(-1) / (a.norm(dim=-1) * b.norm(dim=-1) + eps)


def dist_loss(student: torch.Tensor,
              teacher: torch.Tensor,
              beta: float = 1.0,
              gamma: float = 1.0,
              tau: float = 1.0) -> torch.Tensor:
    """DIST between ``(B, C)`` logits; see the module docstring.

    Args:
        student (Tensor): Student logits ``(B, C)``.
        teacher (Tensor): Teacher logits ``(B, C)`` (detached here).
        beta (float): Weight of the inter-class term. Defaults to 1.0.
        gamma (float): Weight of the intra-class term. Defaults to 1.0.
        tau (float): Softmax temperature. Defaults to 1.0.

    Returns:
        Tensor: Scalar loss.
    """
    if student.shape != teacher.shape:
        raise ValueError(f'DIST: student logits {tuple(student.shape)} vs '
                         f'teacher logits {tuple(teacher.shape)}')
    ys = (student / tau).softmax(-1)
    yt = (teacher.detach() / tau).softmax(-1)
    inter = 1 - _pearson_rows(ys, yt).mean()
    intra = 1 - _pearson_rows(ys.t(), yt.t()).mean()
    return tau**2 * (beta * inter + gamma * intra)


@MODELS.register_module()
class DISTLoss(nn.Module):
    """Module form of :func:`dist_loss`.

    Call as ``loss(student_logits, teacher_logits, target=None)``, the
    signature shared by mmkd's classification KD losses; ``target`` is not
    used.

    Args:
        beta (float): Weight of the inter-class term. Defaults to 1.0.
        gamma (float): Weight of the intra-class term. Defaults to 1.0.
        tau (float): Softmax temperature. Defaults to 1.0.
        loss_weight (float): Multiplier of the loss. Defaults to 1.0.
    """

    def __init__(self,
                 beta: float = 1.0,
                 gamma: float = 1.0,
                 tau: float = 1.0,
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        self.beta = beta
        self.gamma = gamma
        self.tau = tau
        self.loss_weight = loss_weight

    def forward(self,
                student_logits: torch.Tensor,
                teacher_logits: torch.Tensor,
                target: Optional[torch.Tensor] = None) -> torch.Tensor:
        return self.loss_weight * dist_loss(student_logits, teacher_logits,
                                            self.beta, self.gamma, self.tau)
