"""Pixel-wise vanilla KD for semantic segmentation.

``L = T^2 * mean_valid_pixels( sum_c p_t(c) (log p_t(c) - log p_s(c)) )``
with ``p = softmax(z / T)`` over the classes at each pixel. When the two
logit maps differ in size, both are brought to the larger one (bilinear, as
mmseg resizes its logits); pixels whose label is ``ignore_index`` (labels
resized by nearest neighbour) are excluded.
"""
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from mmkd.registry import MODELS
from .kd import kd_loss


def _resize(x: torch.Tensor, size) -> torch.Tensor:
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=size, mode='bilinear', align_corners=False)


def pixel_kd_loss(student: torch.Tensor,
                  teacher: torch.Tensor,
                  labels: Optional[torch.Tensor] = None,
                  temperature: float = 1.0,
                  ignore_index: int = 255) -> torch.Tensor:
    """KD between ``(B, C, H, W)`` logit maps; see the module docstring.

    Args:
        student (Tensor): Student logits.
        teacher (Tensor): Teacher logits (detached), any spatial size.
        labels (Tensor, optional): ``(B, H', W')`` or ``(B, 1, H', W')``
            labels; pixels equal to ``ignore_index`` do not count. Defaults to
            None (every pixel counts).
        temperature (float): Softmax temperature. Defaults to 1.0.
        ignore_index (int): Label value to exclude. Defaults to 255.

    Returns:
        Tensor: Scalar loss.
    """
    if student.shape[1] != teacher.shape[1]:
        raise ValueError(f'pixel KD: student has {student.shape[1]} classes, '
                         f'teacher {teacher.shape[1]}')
    size = max(student.shape[-2:], teacher.shape[-2:], key=lambda s: s[0] * s[1])
    student, teacher = _resize(student, size), _resize(teacher, size)
    weight = None
    if labels is not None:
        labels = labels.reshape(labels.shape[0], 1, *labels.shape[-2:])
        labels = F.interpolate(labels.float(), size=size, mode='nearest')
        weight = (labels[:, 0] != ignore_index).float()
    return kd_loss(student, teacher, temperature, dim=1, weight=weight)


@MODELS.register_module()
class PixelKDLoss(nn.Module):
    """Module form of :func:`pixel_kd_loss`.

    Args:
        temperature (float): Softmax temperature. Defaults to 1.0.
        loss_weight (float): Multiplier of the loss. Defaults to 1.0.
        ignore_index (int): Label value to exclude. Defaults to 255.
    """

    def __init__(self,
                 temperature: float = 1.0,
                 loss_weight: float = 1.0,
                 ignore_index: int = 255) -> None:
        super().__init__()
        self.temperature = temperature
        self.loss_weight = loss_weight
        self.ignore_index = ignore_index

    def forward(self, student: torch.Tensor, teacher: torch.Tensor,
                labels: Optional[torch.Tensor] = None) -> torch.Tensor:
        return self.loss_weight * pixel_kd_loss(
            student, teacher, labels, self.temperature, self.ignore_index)
