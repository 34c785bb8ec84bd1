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
* moved together with the wrapper (``.to()``, ``.cuda()``) by :meth:`_apply`;
* run at the hardware's speed: its weights are cast to ``teacher_precision``
  (bf16 where the device computes it natively) and put in channels-last
  memory format; its outputs reach the losses as fp32.
"""
import functools
import logging
from abc import abstractmethod
from typing import Dict, List, Optional, Union

import torch
import torch.nn as nn
from mmengine.logging import print_log
from mmengine.model import BaseModel

from mmkd.utils import load_weights
from mmkd.utils.precision import resolve_precision, to_fp32
from .builder import ModelSpec, adopt_plain_student_state, build_model


class _NotCopied(tuple):
    """A tuple that ``copy.deepcopy`` returns as it is: copies of the
    distiller (mmengine's ``EMAHook`` makes one) share the one teacher."""

    def __deepcopy__(self, memo):
        return self


@functools.lru_cache(maxsize=1)
def _roi_extractors() -> tuple:
    """mmdet's RoI extractor classes (none without mmdet)."""
    try:
        from mmdet.models.roi_heads.roi_extractors import BaseRoIExtractor
        return (BaseRoIExtractor, )
    except ImportError:
        return ()


def _runs_in_fp32(module: nn.Module) -> bool:
    """Whether a teacher module runs in fp32 on contiguous inputs (with its
    own weights fp32 and contiguous) in a reduced-precision or channels-last
    teacher: mmdet's RoI extractors (they cast the RoIs to the features'
    dtype: bf16 would round the coordinates) and mmcv's compiled operators
    (RoIAlign, deformable convolutions, ...: their CPU kernels take no bf16,
    and channels-last maps are refused or misread)."""
    return isinstance(module, _roi_extractors()) or \
        type(module).__module__.startswith('mmcv.ops')


def _outputs_fp32(module, args, output):
    """Forward hook: the module's floating outputs as contiguous fp32."""
    return to_fp32(output)


def _inputs_fp32(module, args):
    """Forward pre-hook: floating inputs (features, RoIs) as contiguous
    fp32."""
    return to_fp32(args)


def _output_to(module, args, output, dtype):
    """Forward hook: the output back in the teacher's ``dtype``."""
    return output.to(dtype)


class BaseDistiller(BaseModel):
    """Student + frozen teacher. Subclasses implement :meth:`loss`.

    Args:
        student (str | dict): The student: an inline model dict, an
            ``mmdet::``/``mmseg::`` config path or a local config file.
        teacher (str | dict): The teacher, in the same forms.
        teacher_ckpt (str, optional): Teacher weights (path or
            ``http(s)://`` URL, downloaded once), loaded on the CPU under
            mmkd's checkpoint policy with a strict key match
            (:func:`mmkd.utils.load_weights`). Defaults to None (keep the
            teacher's own initialisation: for tests only).
        teacher_ckpt_key (str): Which entry of the teacher file holds the
            weights (``'auto'``: the first of ``state_dict_ema``,
            ``model_ema``, ``state_dict``, ``model``; ``''``: the file
            itself; or a key). Defaults to ``'auto'``.
        student_ckpt (str, optional): Initial student weights in the
            student's own (plain mmdet / mmseg / timm) keys, path or URL,
            strict like ``teacher_ckpt``; the runner's ``init_weights()``
            keeps them. Defaults to None (the student's own
            initialisation).
        student_ckpt_key (str): As ``teacher_ckpt_key``, for
            ``student_ckpt``. Defaults to ``'auto'``.
        eval_teacher (bool): Validate/test the teacher instead of the
            student, e.g. once for a reference number; it runs in its
            ``teacher_precision`` there too. Defaults to False.
        teacher_precision (str): The dtype of the teacher's weights and
            activations: ``'fp32'``, ``'bf16'``, ``'fp16'`` (CUDA only), or
            ``'auto'``: bf16 where the device computes it natively (CUDA
            compute capability 8.0+, a CPU with AMX-BF16 or AVX512-BF16),
            else fp32. A precision the device cannot run natively falls
            back to fp32 with a logged warning (rules:
            :func:`mmkd.utils.resolve_precision`). The weights are cast
            (faster than autocast, and half the memory); outputs go back to
            fp32 before any loss or post-processing; mmdet's RoI extractors
            (on the fp32 RoIs) and mmcv's compiled operators (RoIAlign,
            deformable convolutions) run in fp32 on contiguous maps.
            Defaults to ``'auto'``.
        teacher_channels_last (bool): Keep the teacher's conv weights and
            inputs in channels-last memory format (faster convolutions with
            oneDNN and cuDNN). Defaults to True.
        init_cfg (dict, optional): Initialisation of the distillation-only
            modules. Defaults to None.
        data_preprocessor (dict, optional): Accepted because mmengine's
            runner passes a config's top-level ``data_preprocessor`` (mmseg's
            model bases define one) to the model; the student's own
            preprocessor is what feeds both models. Defaults to None.
    """

    #: scope in which inline student/teacher dicts are built
    default_scope = 'mmdet'
    #: teacher submodules (by attribute name, at any depth) whose outputs
    #: are predictions: a forward hook returns them as fp32, so losses and
    #: post-processing (box decoding, resizing, argmax) never see bf16
    teacher_output_modules = ('bbox_head', 'rpn_head', 'mask_head',
                              'decode_head', 'auxiliary_head', 'conv_seg',
                              'model')

    def __init__(self,
                 student: ModelSpec,
                 teacher: ModelSpec,
                 teacher_ckpt: Optional[str] = None,
                 teacher_ckpt_key: str = 'auto',
                 student_ckpt: Optional[str] = None,
                 student_ckpt_key: str = 'auto',
                 eval_teacher: bool = False,
                 teacher_precision: str = 'auto',
                 teacher_channels_last: bool = True,
                 init_cfg: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None) -> None:
        student_model = build_model(student, self.default_scope)
        # the student's data preprocessor feeds both models
        super().__init__(
            data_preprocessor=student_model.data_preprocessor,
            init_cfg=init_cfg)
        self.student = student_model
        self.student_meta = {}
        if student_ckpt is not None:
            self.student_meta = load_weights(student_model, student_ckpt,
                                             'student', student_ckpt_key)
            # loaded whole: mmengine's init_weights() skips modules flagged
            # is_init, so the runner cannot re-draw it
            student_model.is_init = True
        # load_from of a plain student file loads into the student
        self.register_load_state_dict_pre_hook(adopt_plain_student_state)
        teacher_model = build_model(teacher, self.default_scope)
        self.teacher_meta = {}
        if teacher_ckpt is not None:
            self.teacher_meta = load_weights(teacher_model, teacher_ckpt,
                                             'teacher', teacher_ckpt_key)
        teacher_model.requires_grad_(False)
        teacher_model.eval()
        # a tuple: not a child module; never deep-copied
        self._teacher = _NotCopied((teacher_model, ))
        self.eval_teacher = eval_teacher
        resolve_precision(teacher_precision, 'cpu')  # validates the name
        self.teacher_precision = teacher_precision
        self.teacher_channels_last = teacher_channels_last
        self._teacher_hooks = _NotCopied(())
        self._format_teacher()
        # multiplies every distillation term; hooks schedule it
        self.distill_scale = 1.0
        # subclasses: False when no configured term needs the teacher
        self.uses_teacher = True
        self._set_input_conversion(student_model.data_preprocessor,
                                   teacher_model.data_preprocessor)

    # ------------------------------------------------------------ teacher
    @property
    def teacher_active(self) -> bool:
        """Whether this step runs the teacher: some term needs it and the
        distillation scale (``DistillWeightHook``) is not 0."""
        return self.uses_teacher and self.distill_scale != 0

    @property
    def teacher(self) -> nn.Module:
        """The frozen teacher (not a child module; see the module doc)."""
        return self._teacher[0]

    def train(self, mode: bool = True) -> 'BaseDistiller':
        super().train(mode)
        self.teacher.eval()
        return self

    @property
    def teacher_dtype(self) -> torch.dtype:
        """The dtype the teacher runs in (see ``teacher_precision``)."""
        return self._teacher_dtype

    def _apply(self, fn, *args, **kwargs):
        """The teacher follows the wrapper's device only: ``.to(device)``,
        ``.cuda()`` and ``.cpu()`` move it, while dtype conversions of the
        wrapper (``.float()``, ``.half()``, ``.to(dtype)``) and memory-format
        ones leave it in its configured ``teacher_precision`` and format.
        On a new device the precision is resolved for that device."""
        teacher = self.teacher
        here = next(teacher.parameters()).device
        there = fn(torch.empty(0, device=here)).device
        if there != here:
            teacher.to(there)
            self._format_teacher()
        return super()._apply(fn, *args, **kwargs)

    def _format_teacher(self) -> None:
        """Cast the teacher to its precision on its current device, set its
        memory format and (re)install the hooks that keep its outputs fp32
        and its RoI operators in fp32."""
        teacher = self.teacher
        device = next(teacher.parameters()).device
        dtype, message = resolve_precision(self.teacher_precision, device)
        if message:
            print_log(message, logger='current',
                      level=logging.INFO if self.teacher_precision == 'auto'
                      else logging.WARNING)
        teacher.to(dtype=dtype)
        if self.teacher_channels_last:
            teacher.to(memory_format=torch.channels_last)
        self._teacher_dtype = dtype
        for handle in self._teacher_hooks:
            handle.remove()
        handles, in_fp32 = [], []
        for name, module in teacher.named_modules():
            if name.rsplit('.', 1)[-1] in self.teacher_output_modules:
                handles.append(module.register_forward_hook(_outputs_fp32))
            if (dtype != torch.float32 or self.teacher_channels_last) \
                    and _runs_in_fp32(module) and not any(
                        name.startswith(p + '.') for p in in_fp32):
                in_fp32.append(name)  # its submodules run in fp32 too
                module.to(dtype=torch.float32,
                          memory_format=torch.contiguous_format)
                handles += [
                    module.register_forward_pre_hook(_inputs_fp32),
                    module.register_forward_hook(
                        functools.partial(_output_to, dtype=dtype))
                ]
        self._teacher_hooks = _NotCopied(handles)

    def teacher_forward(self, fn, inputs: torch.Tensor, *extra):
        """Run ``fn(teacher_inputs, *extra)`` for the teacher, under
        ``no_grad``; every distiller runs its teacher through here.

        ``inputs`` are the student-normalised images (re-normalised here the
        teacher's way, then cast to its precision and memory format);
        ``extra`` (e.g. RoIs) is passed unchanged. Floating tensors in the
        result come back as contiguous fp32.
        """
        with torch.no_grad():
            return to_fp32(fn(self._teacher_input(inputs), *extra))

    def _teacher_input(self, inputs: torch.Tensor) -> torch.Tensor:
        """:meth:`teacher_inputs` in the teacher's dtype and format."""
        x = self.teacher_inputs(inputs)
        fmt = torch.channels_last if self.teacher_channels_last and \
            x.dim() == 4 else torch.preserve_format
        return x.to(dtype=self._teacher_dtype, memory_format=fmt)

    def _set_input_conversion(self, student_pre: nn.Module,
                              teacher_pre: nn.Module) -> None:
        """Prepare the re-normalisation of student inputs for the teacher."""

        def norm(pre):
            enabled = getattr(pre, '_enable_normalize', False)
            mean = pre.mean.flatten() if enabled else None
            std = pre.std.flatten() if enabled else None
            # mmdet's preprocessors call it _channel_conversion, mmseg's
            # channel_conversion
            flip = getattr(pre, '_channel_conversion',
                           getattr(pre, 'channel_conversion', False))
            return mean, std, bool(flip)

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
                    self._teacher_input(inputs), data_samples, mode=mode)
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

    @staticmethod
    def idle_loss(modules: nn.Module) -> Dict[str, torch.Tensor]:
        """``{'ds.loss_idle': 0}`` connected to every parameter of
        ``modules``: while no term trains them (distillation stopped), DDP
        still sees a gradient (of 0) for each, so no run needs
        ``find_unused_parameters``."""
        params = list(modules.parameters())
        if not params:
            return {}
        return {'ds.loss_idle': sum(p.sum() for p in params) * 0}

    def parse_losses(self, losses: Dict[str, torch.Tensor]):
        """mmengine's ``parse_losses``, after checking that every term is
        finite: a NaN/Inf stops training with the term's name and the
        iteration, before the optimizer step and any checkpoint."""
        terms = {
            k: (v if isinstance(v, torch.Tensor) else sum(v)).detach().float()
            for k, v in losses.items() if 'loss' in k
        }
        if terms:
            finite = torch.stack([v.sum() for v in terms.values()]).isfinite()
            if not finite.all():  # one sync for all terms
                from mmengine.logging import MessageHub
                it = MessageHub.get_current_instance().get_info('iter')
                bad = ', '.join(
                    f'{k} = {v.sum().item()}'
                    for (k, v), ok in zip(terms.items(), finite) if not ok)
                raise FloatingPointError(
                    f'non-finite loss at iteration '
                    f'{"?" if it is None else it + 1}: {bad}; training '
                    'stopped before the optimizer step, no checkpoint was '
                    'written for this iteration')
        return super().parse_losses(losses)

    def scaled(self, losses: Dict[str, Union[torch.Tensor, List]]) -> dict:
        """Apply the scheduled ``distill_scale`` to distillation terms."""
        if self.distill_scale == 1.0:
            return losses
        return {
            k: [x * self.distill_scale for x in v] if isinstance(v, list) else
            v * self.distill_scale
            for k, v in losses.items()
        }
