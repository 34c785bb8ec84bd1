"""Vanilla KD for sigmoid classifiers (dense detection heads).

RetinaNet, FCOS, ATSS and GFL score each class with an independent sigmoid,
so there is no softmax over classes to match. Each class is a Bernoulli
variable and KD is the binary KL from teacher to student, summed over
classes:

``L = T^2 * mean_locations( sum_c KL(Bern(q_c) || Bern(p_c)) )``,
``p = sigmoid(z_s / T)``, ``q = sigmoid(z_t / T)``.

It is zero when the student matches the teacher. A location is one anchor at
one position: the mean runs over all locations (positions x anchors) of one
FPN level and the batch, so each level's term is on the same scale whatever
its size.

The maps are taken in the head's own layout: either ``(N, C)`` rows of class
logits or a head's raw ``(B, A*C, H, W)`` output with ``channels=C`` (A
anchors per position, their C classes contiguous as in mmdet's heads), with
no permute / reshape copies. The KL is one fused autograd function: its
forward uses the stable form ``softplus(a) - softplus(b) - q * (a - b)``
(``a = z_s / T``, ``b = z_t / T``), its backward is
``(sigmoid(a) - sigmoid(b)) / T`` times the incoming gradient, from the
student's logits and the teacher's ``sigmoid(b)`` kept by the forward (no
other intermediate map is kept for autograd).
"""
from typing import Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from mmkd.registry import MODELS


def _per_location(x: torch.Tensor, channels: Optional[int]) -> torch.Tensor:
    """View of ``x`` with the class dim separate: ``(..., C)`` stays, a
    ``(B, A*C, *spatial)`` map becomes ``(B, A, C, *spatial)``."""
    if channels is None or x.dim() == 2:
        return x
    return x.unflatten(1, (x.shape[1] // channels, channels))


class _SigmoidKDSum(torch.autograd.Function):
    """``sum(w * KL(Bern(sigmoid(zt/T)) || Bern(sigmoid(zs/T))))`` over all
    elements (``w`` per location, broadcast over the classes); gradient for
    ``zs`` only."""

    @staticmethod
    def forward(ctx, zs: torch.Tensor, zt: torch.Tensor, temperature: float,
                weight: Optional[torch.Tensor],
                class_dim: int) -> torch.Tensor:
        a = zs / temperature if temperature != 1 else zs
        b = zt / temperature if temperature != 1 else zt
        q = torch.sigmoid(b)
        kl = F.softplus(a)
        kl -= F.softplus(b)
        kl -= (a - b).mul_(q)
        # q is kept (one map): recomputing it costs more than storing it
        ctx.save_for_backward(zs, q, weight)
        ctx.temperature, ctx.class_dim = temperature, class_dim
        if weight is None:
            return kl.sum()
        return (kl.sum(class_dim) * weight).sum()

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        zs, q, weight = ctx.saved_tensors
        t = ctx.temperature
        g = torch.sigmoid(zs / t if t != 1 else zs)
        g -= q
        g *= grad / t
        if weight is not None:
            g *= weight.unsqueeze(ctx.class_dim)
        return g, None, None, None, None


def _check(student: torch.Tensor, teacher: torch.Tensor,
           channels: Optional[int],
           weight: Optional[torch.Tensor]) -> Tuple[int, int]:
    """Validate the shapes; return the class dim of the class-split view
    (see :func:`_per_location`) and the number of locations."""
    if student.shape != teacher.shape:
        raise ValueError(f'sigmoid_kd_loss: student shape '
                         f'{tuple(student.shape)} != teacher shape '
                         f'{tuple(teacher.shape)}')
    if channels is not None:
        if student.dim() == 2:
            if student.shape[1] != channels:
                raise ValueError(f'sigmoid_kd_loss: channels={channels} but '
                                 f'the (N, C) logits have C = '
                                 f'{student.shape[1]}')
        elif student.dim() < 3 or student.shape[1] % channels:
            raise ValueError(f'sigmoid_kd_loss: channels={channels} does not '
                             f'divide dim 1 of the (B, A*C, H, W) map of '
                             f'shape {tuple(student.shape)}')
    split = channels is not None and student.dim() > 2
    class_dim = 2 if split else student.dim() - 1
    shape = _per_location(student, channels).shape
    loc_shape = shape[:class_dim] + shape[class_dim + 1:]
    if weight is not None and weight.shape != loc_shape:
        raise ValueError(f'sigmoid_kd_loss: weight shape '
                         f'{tuple(weight.shape)} != the per-location shape '
                         f'{tuple(loc_shape)} of the logits '
                         f'{tuple(student.shape)}')
    return class_dim, loc_shape.numel()


def sigmoid_kd_loss(student: torch.Tensor,
                    teacher: torch.Tensor,
                    temperature: float = 1.0,
                    weight: Optional[torch.Tensor] = None,
                    channels: Optional[int] = None) -> torch.Tensor:
    """Binary-KL KD between sigmoid logits; see the module docstring.

    Args:
        student (Tensor): Student logits: classes last ``(..., C)``, or a
            dense map ``(B, A*C, H, W)`` when ``channels`` is given.
        teacher (Tensor): Teacher logits, same shape (no gradient).
        temperature (float): Temperature T. Defaults to 1.0.
        weight (Tensor, optional): Per-location weights, the logits' shape
            without the class dim (``(B, A, H, W)`` for a map), treated as
            constants; the result is the weighted mean
            ``sum(w * kl) / sum(w)`` (0, still part of the graph, when every
            weight is 0). Defaults to None (plain mean over locations).
        channels (int, optional): Classes per anchor C of a
            ``(B, A*C, H, W)`` map. Defaults to None (classes last).

    Returns:
        Tensor: Scalar loss.
    """
    class_dim, locations = _check(student, teacher, channels, weight)
    zs = _per_location(student, channels)
    zt = _per_location(teacher.detach(), channels)
    if zs.dtype not in (torch.float32, torch.float64):
        zs = zs.float()  # fp16 / bf16 maps: sum in fp32
    zt = zt.to(zs.dtype)
    if weight is not None:
        weight = weight.detach().to(zs.dtype)
    total = _SigmoidKDSum.apply(zs, zt, float(temperature), weight,
                                class_dim)
    if weight is None:
        return total * (temperature**2 / locations)
    # the clamp only matters when every weight is 0 (then so is the sum)
    return total * temperature**2 / weight.sum().clamp(
        min=torch.finfo(zs.dtype).tiny)


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

    def forward(self,
                student: torch.Tensor,
                teacher: torch.Tensor,
                weight: Optional[torch.Tensor] = None,
                channels: Optional[int] = None) -> torch.Tensor:
        """Args as :func:`sigmoid_kd_loss` (``channels`` for raw
        ``(B, A*C, H, W)`` maps); returns ``loss_weight`` times it."""
        return self.loss_weight * sigmoid_kd_loss(
            student, teacher, self.temperature, weight, channels)
