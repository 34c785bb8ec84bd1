"""The frozen teacher: one object used by every distiller, the benchmark
and the tests.

:class:`FrozenTeacher` holds the teacher model and is the only way to run
it. It owns:

* **Holding**: ``eval()`` and ``requires_grad=False`` at all times; it is a
  plain attribute of the distiller, not a child module, so the runner's
  ``init_weights()``, the optimizer, DDP and the checkpoints never see it,
  and ``copy.deepcopy`` (mmengine's ``EMAHook``) shares it.
* **Precision and memory format**: the weights stay exact fp32 until the
  first forward on the device the teacher then sits on; only then is
  ``teacher_precision`` resolved for that device
  (:func:`mmkd.utils.resolve_precision`) and the weights cast (bf16 where
  the device computes it fast) and put in channels-last format. A move to
  another device afterwards restores the exact fp32 weights (kept on the
  host while a cast copy is in use) and resolves again at the next forward,
  so a teacher cast on one device never carries that rounding to another.
  mmdet's RoI extractors and mmcv's compiled operators run in fp32 on
  contiguous maps.
* **Input conversion**: the student-normalised batch is re-normalised the
  teacher's way (mean, std, channel order); padded pixels (beyond each
  sample's ``img_shape``) are the teacher's zero, as its own data
  preprocessor would pad them.
* **The call**: under ``no_grad`` and outside any autocast of the student
  (mmengine's ``AmpOptimWrapper``): the teacher computes in its own
  precision (a reduced one under an autocast of that dtype, so tensors a
  model creates in fp32 on the way meet its weights in that dtype), and
  every floating output comes back as contiguous fp32.
"""
import functools
import logging
from typing import Callable, Optional, Sequence

import torch
import torch.nn as nn
from mmengine.logging import print_log

from mmkd.utils.precision import resolve_precision, to_fp32


@functools.lru_cache(maxsize=1)
def _roi_extractors() -> tuple:
    """mmdet's RoI extractor classes (none without mmdet)."""
    try:
        from mmdet.models.roi_heads.roi_extractors import BaseRoIExtractor
        return (BaseRoIExtractor, )
    except ImportError:
        return ()


#: modules that call mmcv's compiled operators as functions (TOOD's head:
#: ``deform_conv2d`` in its deformable sampling), so they run in fp32 whole
CALLS_MMCV_OPS = ('TOODHead', )


def _runs_in_fp32(module: nn.Module) -> bool:
    """Whether a teacher module runs in fp32 on contiguous inputs in a
    reduced-precision or channels-last teacher: mmdet's RoI extractors
    (they cast the RoIs to the features' dtype: bf16 would round the
    coordinates), mmcv's compiled operators (RoIAlign, deformable
    convolutions: their CPU kernels take no bf16, and channels-last maps are
    refused or misread) and the modules of :data:`CALLS_MMCV_OPS`."""
    return isinstance(module, _roi_extractors()) or \
        type(module).__module__.startswith('mmcv.ops') or \
        type(module).__name__ in CALLS_MMCV_OPS


def _outputs_fp32(module, args, output):
    """Forward hook: the module's floating outputs as contiguous fp32."""
    return to_fp32(output)


def _first_device_type(obj) -> str:
    if isinstance(obj, torch.Tensor):
        return obj.device.type
    if isinstance(obj, (tuple, list)):
        for x in obj:
            found = _first_device_type(x)
            if found:
                return found
    return ''


def _inputs_fp32(module, args, kwargs):
    """Forward pre-hook: floating inputs, positional and keyword (features,
    RoIs; the query, value and reference points mmdet's transformer layers
    pass mmcv's deformable attention by keyword) as contiguous fp32, and the
    teacher's autocast off inside the module (closed by
    :func:`_output_to`)."""
    device = _first_device_type(args) or _first_device_type(
        list(kwargs.values()))
    ctx = torch.autocast(device or 'cpu', enabled=False)
    ctx.__enter__()
    module._mmkd_autocast_off = ctx
    return to_fp32(args), to_fp32(kwargs)


def _output_to(module, args, output, dtype):
    """Forward hook: autocast back on; the output in the teacher's
    ``dtype``."""
    ctx = module.__dict__.pop('_mmkd_autocast_off', None)
    if ctx is not None:
        ctx.__exit__(None, None, None)
    return to_dtype(output, dtype)


def to_dtype(obj, dtype):
    """Floating tensors in ``obj`` (nested tuples / lists) as ``dtype``."""
    if isinstance(obj, torch.Tensor):
        return obj.to(dtype) if obj.is_floating_point() else obj
    if isinstance(obj, (tuple, list)):
        return type(obj)(to_dtype(x, dtype) for x in obj)
    return obj


def normalisation(pre: nn.Module) -> dict:
    """Mean, std (None when the preprocessor does not normalise) and
    channel flip of an mmdet / mmseg / mmkd data preprocessor."""
    enabled = getattr(pre, '_enable_normalize', False)
    # mmdet's preprocessors call it _channel_conversion, mmseg's
    # channel_conversion
    flip = getattr(pre, '_channel_conversion',
                   getattr(pre, 'channel_conversion', False))
    return dict(
        mean=pre.mean.flatten() if enabled else None,
        std=pre.std.flatten() if enabled else None,
        flip=bool(flip))


class FrozenTeacher:
    """A frozen teacher model and the one way to run it.

    Args:
        model (nn.Module): The teacher (weights loaded, fp32).
        precision (str): ``teacher_precision``: ``'auto'``, ``'fp32'``,
            ``'bf16'`` or ``'fp16'`` (rules:
            :func:`mmkd.utils.resolve_precision`). Defaults to ``'auto'``.
        channels_last (bool): Channels-last conv weights and inputs.
            Defaults to True.
        student_preprocessor (nn.Module, optional): The student's data
            preprocessor, whose normalisation the inputs arrive in.
            Defaults to None (inputs are in the teacher's normalisation).
        output_modules (Sequence[str]): Names (last attribute, any depth) of
            submodules whose outputs are predictions; a hook returns them as
            fp32 so post-processing never sees bf16. Defaults to the mmdet /
            mmseg / timm heads.
    """

    OUTPUT_MODULES = ('bbox_head', 'rpn_head', 'mask_head', 'decode_head',
                      'auxiliary_head', 'conv_seg', 'model')

    def __init__(self,
                 model: nn.Module,
                 precision: str = 'auto',
                 channels_last: bool = True,
                 student_preprocessor: Optional[nn.Module] = None,
                 output_modules: Sequence[str] = OUTPUT_MODULES) -> None:
        resolve_precision(precision, 'cpu')  # validates the name
        model.requires_grad_(False)
        model.eval()
        self.model = model
        self.precision = precision
        self.channels_last = channels_last
        self.output_modules = tuple(output_modules)
        self.dtype = torch.float32
        self._prepared_on: Optional[torch.device] = None
        self._fp32_state: Optional[dict] = None
        self._hooks: list = []
        self._renorm = None
        if student_preprocessor is not None:
            s = normalisation(student_preprocessor)
            t = normalisation(model.data_preprocessor)
            same = s['flip'] == t['flip'] and (
                (s['mean'] is None and t['mean'] is None) or
                (s['mean'] is not None and t['mean'] is not None
                 and torch.equal(s['mean'], t['mean'])
                 and torch.equal(s['std'], t['std'])))
            if not same:
                self._renorm = dict(s_mean=s['mean'], s_std=s['std'],
                                    t_mean=t['mean'], t_std=t['std'],
                                    flip=s['flip'] != t['flip'])

    def __deepcopy__(self, memo):
        return self  # copies of the distiller share the one teacher

    # ------------------------------------------------------------ device
    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def to(self, device: torch.device) -> 'FrozenTeacher':
        """Move the teacher. A teacher already cast for another device goes
        back to its exact fp32 weights first; its precision is resolved
        again at the next forward, for the new device."""
        device = torch.device(device)
        if device == self.device:
            return self
        self.reset_precision()
        self.model.to(device)
        return self

    def reset_precision(self) -> None:
        """Back to the exact fp32 weights in the default memory format;
        the next forward resolves the precision again."""
        for handle in self._hooks:
            handle.remove()
        self._hooks = []
        if self._fp32_state is not None:
            device = self.device
            self.model.to(dtype=torch.float32,
                          memory_format=torch.contiguous_format)
            self.model.load_state_dict(
                {k: v.to(device) for k, v in self._fp32_state.items()})
            self._fp32_state = None
        elif self._prepared_on is not None:
            self.model.to(memory_format=torch.contiguous_format)
        self.dtype = torch.float32
        self._prepared_on = None

    def prepare(self) -> None:
        """Resolve the precision for the device the teacher is on, cast its
        weights (keeping an fp32 copy on the host), set the memory format
        and install the fp32 hooks. Idempotent; run by the first call."""
        device = self.device
        if self._prepared_on == device:
            return
        self.reset_precision()
        dtype, message = resolve_precision(self.precision, device)
        if message:
            print_log(message, logger='current',
                      level=logging.INFO if self.precision == 'auto'
                      else logging.WARNING)
        model = self.model
        if dtype != torch.float32:
            self._fp32_state = {
                k: v.detach().to('cpu', copy=True)
                for k, v in model.state_dict().items()
            }
            model.to(dtype=dtype)
        if self.channels_last:
            model.to(memory_format=torch.channels_last)
        in_fp32 = []
        for name, module in model.named_modules():
            is_output = name.rsplit('.', 1)[-1] in self.output_modules
            if (dtype != torch.float32 or self.channels_last) \
                    and _runs_in_fp32(module) and not any(
                        name.startswith(p + '.') for p in in_fp32):
                in_fp32.append(name)  # its submodules run in fp32 too
                module.to(dtype=torch.float32,
                          memory_format=torch.contiguous_format)
                self._hooks += [
                    module.register_forward_pre_hook(_inputs_fp32,
                                                     with_kwargs=True),
                    # a prediction module's output stays fp32
                    module.register_forward_hook(functools.partial(
                        _output_to,
                        dtype=torch.float32 if is_output else dtype))
                ]
            if is_output:
                self._hooks.append(module.register_forward_hook(_outputs_fp32))
        self.dtype = dtype
        self._prepared_on = device

    # ------------------------------------------------------------ inputs
    def inputs(self,
               inputs: torch.Tensor,
               data_samples: Optional[list] = None) -> torch.Tensor:
        """Student-normalised inputs re-normalised the teacher's way (fp32,
        default format). With ``data_samples`` carrying ``img_shape``, the
        padding beyond each image is set to the teacher's zero."""
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
        if data_samples is not None and x.dim() == 4:
            x = self._zero_padding(x, data_samples)
        return x

    @staticmethod
    def _zero_padding(x: torch.Tensor, data_samples: list) -> torch.Tensor:
        H, W = x.shape[-2:]
        mask = None
        for i, sample in enumerate(data_samples):
            shape = getattr(sample, 'metainfo', {}).get('img_shape')
            if shape is None:
                continue
            h, w = int(shape[0]), int(shape[1])
            if h < H or w < W:
                if mask is None:
                    mask = torch.ones(x.shape[0], 1, H, W, dtype=x.dtype,
                                      device=x.device)
                mask[i, :, h:] = 0
                mask[i, :, :, w:] = 0
        return x if mask is None else x * mask

    # ------------------------------------------------------------ call
    def __call__(self,
                 fn: Callable,
                 inputs: torch.Tensor,
                 *extra,
                 data_samples: Optional[list] = None):
        """Run ``fn(teacher_inputs, *extra)`` for the teacher: under
        ``no_grad``, outside the student's autocast, in the teacher's
        precision and memory format; floating outputs come back as
        contiguous fp32. ``extra`` (e.g. RoIs) is passed unchanged."""
        self.prepare()
        x = self.inputs(inputs, data_samples)
        fmt = torch.channels_last if self.channels_last and x.dim() == 4 \
            else torch.preserve_format
        x = x.to(dtype=self.dtype, memory_format=fmt)
        # The student's autocast (AMP) never reaches the teacher. A
        # reduced-precision teacher runs under an autocast of its own dtype:
        # its weights are cast already (no per-call weight casts), and
        # tensors a model makes in fp32 on the way (Swin's attention masks,
        # a cascade head's fp32 input) meet its weights in that dtype.
        reduced = self.dtype != torch.float32
        with torch.no_grad(), torch.autocast(
                x.device.type, dtype=self.dtype if reduced else None,
                enabled=reduced):
            return to_fp32(fn(x, *extra))

    def predict(self, inputs: torch.Tensor, data_samples: Optional[list],
                mode: str):
        """The teacher's own ``forward(..., mode)`` for validation and
        testing (``eval_teacher``), on the same path as :meth:`__call__`."""
        return self(lambda x: self.model(x, data_samples, mode=mode), inputs,
                    data_samples=data_samples)
