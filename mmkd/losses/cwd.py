"""Channel-wise distillation (CWD, Shu et al., https://arxiv.org/abs/2011.13256).

Each channel's map is turned into a distribution over its spatial
positions, ``softmax(z_c / T)`` over ``H x W``, and the student matches the
teacher's per channel: ``L = T^2 / (B * C) * sum_{b,c} KL(p_t || p_s)``.
Maps of different sizes are brought to the larger one (bilinear). Labels do
not enter (every position belongs to every channel's distribution).
"""
from typing import Optional

import torch
import torch.nn as nn

from mmkd.registry import MODELS
from .kd import kd_loss
from .pixel_kd import _resize


def cwd_loss(student: torch.Tensor,
             teacher: torch.Tensor,
             temperature: float = 1.0) -> torch.Tensor:
    """CWD between ``(B, C, H, W)`` maps; see the module docstring.

    Args:
        student (Tensor): Student map.
        teacher (Tensor): Teacher map (detached), same channels.
        temperature (float): Spatial softmax temperature. Defaults to 1.0.

    Returns:
        Tensor: Scalar loss.
    """
    if student.shape[1] != teacher.shape[1]:
        raise ValueError(f'CWD: student has {student.shape[1]} channels, '
                         f'teacher {teacher.shape[1]}')
    size = max(student.shape[-2:], teacher.shape[-2:], key=lambda s: s[0] * s[1])
    s = _resize(student, size).flatten(2)  # (B, C, HW)
    t = _resize(teacher, size).flatten(2)
    return kd_loss(s, t, temperature, dim=-1)  # mean over B x C


@MODELS.register_module()
class ChannelWiseDivergence(nn.Module):
    """Module form of :func:`cwd_loss` (mmrazor's name for it).

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
                labels: Optional[torch.Tensor] = None) -> torch.Tensor:
        return self.loss_weight * cwd_loss(student, teacher, self.temperature)
