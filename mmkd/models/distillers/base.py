"""The distillation wrapper shared by every task.

A :class:`BaseDistiller` owns a plain student model (mmdet / mmseg / timm),
a frozen teacher, and whatever exists only for distillation (auxiliary heads,
adapters). Task adapters subclass it and implement :meth:`loss`: they only
say which outputs to compare.

The teacher is inference-only and kept outside the module tree on purpose:

* not a child module, so ``Runner.train()``'s ``init_weights()`` cannot
  re-initialise it, the optimizer never sees its parameters, DDP never wraps
  it, and runner checkpoints hold only the student and the distillation-only
  modules (the teacher is rebuilt from ``teacher_ckpt``, so resuming is exact);
* ``requires_grad=False`` and ``eval()`` at all times, including after the
  runner calls ``train()``;
* moved together with the wrapper (``.to()``, ``.cuda()``) by :meth:`_apply`.
"""
from abc import abstractmethod
from typing import Dict, List, Optional, Union

import torch
import torch.nn as nn
from mmengine.model import BaseModel

from .builder import ModelSpec, build_model, load_weights


class BaseDistiller(BaseModel):
    """Student + frozen teacher. Subclasses implement :meth:`loss`.

    Args:
        student (str | dict): The student: an inline model dict, an
            ``mmdet::``/``mmseg::`` config path or a local config file.
        teacher (str | dict): The teacher, in the same forms.
        teacher_ckpt (str, optional): Teacher weights, loaded on the CPU
            under mmkd's checkpoint policy with a strict key match. Defaults
            to None (keep the teacher's own initialisation: for tests only).
        eval_teacher (bool): Validate/test the teacher instead of the
            student, e.g. once for a reference number. Defaults to False.
        init_cfg (dict, optional): Initialisation of the distillation-only
            modules. Defaults to None.
        data_preprocessor (dict, optional): Accepted because mmengine's
            runner passes a config's top-level ``data_preprocessor`` (mmseg's
            model bases define one) to the model; the student's own
            preprocessor is what feeds both models. Defaults to None.
    """

    #: scope in which inline student/teacher dicts are built
    default_scope = 'mmdet'

    def __init__(self,
                 student: ModelSpec,
                 teacher: ModelSpec,
                 teacher_ckpt: Optional[str] = None,
                 eval_teacher: bool = False,
                 init_cfg: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None) -> None:
        student_model = build_model(student, self.default_scope)
        # the student's data preprocessor feeds both models
        super().__init__(
            data_preprocessor=student_model.data_preprocessor,
            init_cfg=init_cfg)
        self.student = student_model
        teacher_model = build_model(teacher, self.default_scope)
        self.teacher_meta = {}
        if teacher_ckpt is not None:
            self.teacher_meta = load_weights(teacher_model, teacher_ckpt)
        teacher_model.requires_grad_(False)
        teacher_model.eval()
        self._teacher = (teacher_model, )  # a tuple: not a child module
        self.eval_teacher = eval_teacher
        # multiplies every distillation term; hooks schedule it
        self.distill_scale = 1.0
        self._set_input_conversion(student_model.data_preprocessor,
                                   teacher_model.data_preprocessor)

    # ------------------------------------------------------------ teacher
    @property
    def teacher(self) -> nn.Module:
        """The frozen teacher (not a child module; see the module doc)."""
        return self._teacher[0]

    def train(self, mode: bool = True) -> 'BaseDistiller':
        super().train(mode)
        self.teacher.eval()
        return self

    def _apply(self, fn, *args, **kwargs):
        self.teacher._apply(fn, *args, **kwargs)
        return super()._apply(fn, *args, **kwargs)

    def teacher_forward(self, fn, inputs: torch.Tensor, *extra):
        """Run ``fn(teacher_inputs, *extra)`` for the teacher, under
        ``no_grad``; every distiller runs its teacher through here.

        ``inputs`` are the student-normalised images (re-normalised here the
        teacher's way); ``extra`` (e.g. RoIs) is passed unchanged.
        """
        with torch.no_grad():
            return fn(self.teacher_inputs(inputs), *extra)

    def _set_input_conversion(self, student_pre: nn.Module,
                              teacher_pre: nn.Module) -> None:
        """Prepare the re-normalisation of student inputs for the teacher."""

        def norm(pre):
            enabled = getattr(pre, '_enable_normalize', False)
            mean = pre.mean.flatten() if enabled else None
            std = pre.std.flatten() if enabled else None
            return mean, std, bool(getattr(pre, '_channel_conversion', False))

        s_mean, s_std, s_flip = norm(student_pre)
        t_mean, t_std, t_flip = norm(teacher_pre)
        same = s_flip == t_flip and (
            (s_mean is None and t_mean is None) or
            (s_mean is not None and t_mean is not None
             and torch.equal(s_mean, t_mean) and torch.equal(s_std, t_std)))
        self._renorm = None if same else dict(
            s_mean=s_mean, s_std=s_std, t_mean=t_mean, t_std=t_std,
            flip=s_flip != t_flip)

    def teacher_inputs(self, inputs: torch.Tensor) -> torch.Tensor:
        """Student-normalised inputs re-normalised the teacher's way."""
        if self._renorm is None:
            return inputs
        r = self._renorm

        def col(v):
            return v.to(inputs).view(1, -1, 1, 1)

        x = inputs
        if r['s_mean'] is not None:
            x = x * col(r['s_std']) + col(r['s_mean'])
        if r['flip']:
            x = x.flip(1)
        if r['t_mean'] is not None:
            x = (x - col(r['t_mean'])) / col(r['t_std'])
        return x

    # ------------------------------------------------------------ routing
    def forward(self,
                inputs: torch.Tensor,
                data_samples: Optional[list] = None,
                mode: str = 'tensor'):
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if self.eval_teacher:
            with torch.no_grad():
                return self.teacher(
                    self.teacher_inputs(inputs), data_samples, mode=mode)
        return self.student(inputs, data_samples, mode=mode)

    @abstractmethod
    def loss(self, inputs: torch.Tensor,
             data_samples: Optional[list]) -> Dict[str, torch.Tensor]:
        """Task losses of the student plus the distillation terms."""

    # ------------------------------------------------------------ helpers
    @torch.no_grad()
    def student_stages(self, size: int = 256):
        """Channels and strides of the student backbone's outputs (probed
        with one zero image in eval mode, so BN statistics stay as they
        are)."""
        backbone = self.student.backbone
        was_training = backbone.training
        backbone.eval()
        outs = backbone(torch.zeros(1, 3, size, size))
        backbone.train(was_training)
        return [o.shape[1] for o in outs], [size // o.shape[-1] for o in outs]

    @staticmethod
    def deep_supervision_stages(cfg: dict, num_outputs: int):
        """Validated ``(stages, stage_weights)`` of a ``deep_supervision``
        config."""
        stages = list(cfg.get('stages', ()))
        if not stages:
            raise ValueError('deep_supervision needs a non-empty "stages"')
        for s in stages:
            if not 0 <= s < num_outputs:
                raise ValueError(
                    f'deep_supervision.stages: {s} is not one of the '
                    f'backbone outputs 0..{num_outputs - 1}')
        weights = list(cfg.get('stage_weights') or [1.0] * len(stages))
        if len(weights) != len(stages):
            raise ValueError(
                f'deep_supervision: {len(weights)} stage_weights for '
                f'{len(stages)} stages')
        return stages, weights

    def scaled(self, losses: Dict[str, Union[torch.Tensor, List]]) -> dict:
        """Apply the scheduled ``distill_scale`` to distillation terms."""
        if self.distill_scale == 1.0:
            return losses
        return {
            k: [x * self.distill_scale for x in v] if isinstance(v, list) else
            v * self.distill_scale
            for k, v in losses.items()
        }
