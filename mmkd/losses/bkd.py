"""Binary KD (BKD), an ablation of VanillaKD.

Paper: https://arxiv.org/abs/2305.15781.

The student's logits are trained with binary cross-entropy (independent
sigmoids) against the teacher's softmax probabilities:

``L = mean_{b,c}( BCE_with_logits(z_s[b, c], softmax(z_t)[b, c]) )``

the mean running over batch x classes, as in the VanillaKD code
(https://github.com/Hao840/vanillaKD). Teacher logits are detached.
"""
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from mmkd.registry import MODELS


def bkd_loss(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """BCE of ``(B, C)`` student logits against the teacher's softmax.

    Args:
        student (Tensor): Student logits ``(B, C)``.
        teacher (Tensor): Teacher logits ``(B, C)`` (detached here).

    Returns:
        Tensor: Scalar loss.
    """
    if student.shape != teacher.shape:
        raise ValueError(f'BKD: student logits {tuple(student.shape)} vs '
                         f'teacher logits {tuple(teacher.shape)}')
    target = teacher.detach().softmax(dim=-1)
    return F.binary_cross_entropy_with_logits(student, target)


@MODELS.register_module()
class BKDLoss(nn.Module):
    """Module form of :func:`bkd_loss`.

    Call as ``loss(student_logits, teacher_logits, target=None)``, the
    signature shared by mmkd's classification KD losses; ``target`` is not
    used.

    Args:
        loss_weight (float): Multiplier of the loss. Defaults to 1.0.
    """

    def __init__(self, loss_weight: float = 1.0) -> None:
        super().__init__()
        self.loss_weight = loss_weight

    def forward(self,
                student_logits: torch.Tensor,
                teacher_logits: torch.Tensor,
                target: Optional[torch.Tensor] = None) -> torch.Tensor:
        return self.loss_weight * bkd_loss(student_logits, teacher_logits)
