"""The distillation wrapper shared by every task.

A :class:`BaseDistiller` owns a plain student model (mmdet / mmseg / timm),
a frozen teacher, and whatever exists only for distillation (auxiliary heads,
adapters). Task adapters subclass it and implement :meth:`loss`: they only
say which outputs to compare.

The teacher is a :class:`~.teacher.FrozenTeacher` (holding, precision,
memory format, input re-normalisation, the no-grad call outside the
student's autocast): a plain attribute, not a child module, so
``Runner.train()``'s ``init_weights()`` cannot re-initialise it, the
optimizer never sees its parameters, DDP never wraps it, and runner
checkpoints hold only the student and the distillation-only modules (the
teacher is rebuilt from ``teacher_ckpt``, so resuming is exact). It moves with
the wrapper (``.to()``, ``.cuda()``, see :meth:`BaseDistiller._apply`).

mmdet / mmseg hooks that reach ``runner.model.bbox_head``, ``.backbone``,
``.decode_head``, ... (``YOLOXModeSwitchHook``, ``SyncNormHook``, ...) reach
the student's modules: those names are read-only views of the student's.
"""
from abc import abstractmethod
from typing import Dict, List, Optional, Union

import torch
import torch.nn as nn
from mmengine.model import BaseModel

from mmkd.deep_supervision.loop import idle_loss
from mmkd.utils import load_weights
from .builder import ModelSpec, adopt_plain_student_state, build_model
from .teacher import FrozenTeacher

#: student attributes that mmdet / mmseg hooks read on ``runner.model``
STUDENT_VIEWS = ('backbone', 'neck', 'bbox_head', 'rpn_head', 'roi_head',
                 'decode_head', 'auxiliary_head')


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
            ``'auto'``: bf16 where the device computes it fast (CUDA
            with native bf16, compute capability 8.0+; a CPU with
            AMX-BF16), else fp32. Resolved at the teacher's first forward,
            for the device it is on then (its weights stay exact fp32
            until then). A precision the device cannot run falls back to
            fp32 with a logged message (rules:
            :func:`mmkd.utils.resolve_precision`). The weights are cast
            (faster than autocast, and half the memory); the teacher runs
            outside the student's autocast; outputs go back to fp32 before
            any loss or post-processing; mmdet's RoI extractors (on the
            fp32 RoIs) and mmcv's compiled operators (RoIAlign, deformable
            convolutions) run in fp32 on contiguous maps.
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
        # Building the teacher (and the subclasses' auxiliary heads) draws
        # from torch's random stream; it is restored afterwards
        # (restore_rng), so for a given seed the runner's init_weights()
        # draws the student's initial weights exactly as for the plain
        # student: paired arms.
        self._rng_after_student = torch.get_rng_state()
        teacher_model = build_model(teacher, self.default_scope)
        self.teacher_meta = {}
        if teacher_ckpt is not None:
            self.teacher_meta = load_weights(teacher_model, teacher_ckpt,
                                             'teacher', teacher_ckpt_key)
        self.teacher_runner = FrozenTeacher(
            teacher_model, teacher_precision, teacher_channels_last,
            student_model.data_preprocessor)
        self.eval_teacher = eval_teacher
        # multiplies every distillation term; hooks schedule it
        self.distill_scale = 1.0
        # subclasses: False when no configured term needs the teacher
        self.uses_teacher = True

    def restore_rng(self) -> None:
        """Put torch's random stream back where the student's build left it
        (subclasses call this at the end of ``__init__``)."""
        torch.set_rng_state(self._rng_after_student)

    # ------------------------------------------------------------ teacher
    @property
    def teacher_active(self) -> bool:
        """Whether this step runs the teacher: some term needs it and the
        distillation scale (``DistillWeightHook``) is not 0."""
        return self.uses_teacher and self.distill_scale != 0

    @property
    def teacher(self) -> nn.Module:
        """The frozen teacher model (not a child module; see the module
        doc)."""
        return self.teacher_runner.model

    @property
    def teacher_dtype(self) -> torch.dtype:
        """The dtype the teacher runs in (resolved at its first forward)."""
        return self.teacher_runner.dtype

    def train(self, mode: bool = True) -> 'BaseDistiller':
        super().train(mode)
        self.teacher.eval()
        return self

    def _apply(self, fn, *args, **kwargs):
        """The teacher follows the wrapper's device only: ``.to(device)``,
        ``.cuda()`` and ``.cpu()`` move it (see :meth:`FrozenTeacher.to`),
        while dtype and memory-format conversions of the wrapper leave it
        as ``teacher_precision`` makes it."""
        here = self.teacher_runner.device
        there = fn(torch.empty(0, device=here)).device
        self.teacher_runner.to(there)
        return super()._apply(fn, *args, **kwargs)

    def teacher_forward(self, fn, inputs: torch.Tensor, *extra,
                        data_samples: Optional[list] = None):
        """Run ``fn(teacher_inputs, *extra)`` for the teacher (see
        :meth:`FrozenTeacher.__call__`); every distiller runs its teacher
        through here. ``data_samples`` (with ``img_shape``) let padding be
        the teacher's zero."""
        return self.teacher_runner(fn, inputs, *extra,
                                   data_samples=data_samples)

    def teacher_inputs(self, inputs: torch.Tensor,
                       data_samples: Optional[list] = None) -> torch.Tensor:
        """Student-normalised inputs re-normalised the teacher's way."""
        return self.teacher_runner.inputs(inputs, data_samples)

    def teacher_eval_inputs(self, x: torch.Tensor) -> torch.Tensor:
        """What the teacher's ``predict`` sees of the (teacher-normalised)
        batch with ``eval_teacher``; classification resizes to
        ``teacher_input_size``."""
        return x

    def set_epoch(self, epoch: int) -> None:
        """mmdet's ``SetEpochInfoHook``: the epoch for the student (its own
        ``set_epoch`` if it has one) and every head that keeps an ``epoch``
        (TOOD's schedule: ``initial_epoch``), auxiliary heads included."""
        if hasattr(self.student, 'set_epoch'):
            self.student.set_epoch(epoch)
        for module in self.modules():
            if module is not self and (hasattr(module, 'epoch')
                                       or hasattr(module, 'initial_epoch')):
                module.epoch = epoch

    # ------------------------------------------------------------ routing
    def forward(self,
                inputs: torch.Tensor,
                data_samples: Optional[list] = None,
                mode: str = 'tensor'):
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if self.eval_teacher:
            return self.teacher_forward(
                lambda x: self.teacher(self.teacher_eval_inputs(x),
                                       data_samples, mode=mode),
                inputs, data_samples=data_samples)
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

    idle_loss = staticmethod(idle_loss)

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


def _student_view(name: str) -> property:

    def get(self):
        return getattr(self.student, name)

    return property(get, doc=f"The student's ``{name}`` (for mmdet / mmseg "
                    'hooks that reach it on ``runner.model``).')


for _name in STUDENT_VIEWS:
    setattr(BaseDistiller, _name, _student_view(_name))
