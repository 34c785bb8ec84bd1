"""Vanilla KD for sigmoid classifiers (dense detection heads).

RetinaNet, FCOS, ATSS and GFL score each class with an independent sigmoid,
so there is no softmax over classes to match. Each class is a Bernoulli
variable and KD is the binary KL from teacher to student, summed over
classes:

``L = T^2 * mean_locations( sum_c KL(Bern(q_c) || Bern(p_c)) )``,
``p = sigmoid(z_s / T)``, ``q = sigmoid(z_t / T)``.

This equals BCE-with-logits against the teacher's probabilities minus the
teacher's entropy, so it is zero when the student matches the teacher. The
mean runs over all locations (anchor points x anchors) of one FPN level and
the batch, so each level's term is on the same scale whatever its size.
"""
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from mmkd.registry import MODELS


def sigmoid_kd_loss(student: torch.Tensor,
                    teacher: torch.Tensor,
                    temperature: float = 1.0,
                    weight: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Binary-KL KD between sigmoid logits of shape ``(..., C)``.

    Args:
        student (Tensor): Student logits, classes last.
        teacher (Tensor): Teacher logits, same shape (detached here).
        temperature (float): Temperature T. Defaults to 1.0.
        weight (Tensor, optional): Per-location weights (shape without the
            class dim); result ``sum(w * kl) / max(sum(w), 1)``. Defaults to
            None (plain mean over locations).

    Returns:
        Tensor: Scalar loss.
    """
    zs = student / temperature if temperature != 1 else student
    with torch.no_grad():
        zt = teacher / temperature
        q = torch.sigmoid(zt)
        # the teacher's entropy: a constant, reduced at once (memory)
        ent = F.binary_cross_entropy_with_logits(
            zt, q, reduction='none').sum(-1)
    # BCE(zs, q) - H(q) = KL(Bern(q) || Bern(sigmoid(zs)))
    kl = F.binary_cross_entropy_with_logits(
        zs, q, reduction='none').sum(-1) - ent
    if weight is None:
        return kl.mean() * temperature**2
    return (kl * weight).sum() / weight.sum().clamp(min=1) * temperature**2


@MODELS.register_module()
class SigmoidKDLoss(nn.Module):
    """Module form of :func:`sigmoid_kd_loss`.

    Args:
        temperature (float): Temperature. Defaults to 1.0.
        loss_weight (float): Multiplier of the loss. Defaults to 1.0.
    """

    def __init__(self, temperature: float = 1.0,
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        self.temperature = temperature
        self.loss_weight = loss_weight

    def forward(self, student: torch.Tensor, teacher: torch.Tensor,
                weight: Optional[torch.Tensor] = None) -> torch.Tensor:
        return self.loss_weight * sigmoid_kd_loss(student, teacher,
                                                  self.temperature, weight)
