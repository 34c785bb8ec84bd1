"""Which reduced precision a device runs fast, and the teacher's rule.

``teacher_precision`` of the distillers is one of :data:`PRECISIONS`;
:func:`resolve_precision` turns it into the dtype the teacher's weights get
on a device. bf16 is *fast* on a CUDA GPU with bf16 support (compute
capability 8.0+) and on a CPU with AMX-BF16; a CPU with only AVX512-BF16
runs it natively but slower than fp32 (oneDNN's bf16 convolutions measured
1.75x slower than its fp32 ones on such a CPU, RetinaNet R101's forward
1.3-1.5x slower):

* ``'fp32'``: always fp32;
* ``'bf16'``: bf16 where the device has bf16 instructions (with a warning
  where it is slower than fp32), otherwise fp32 with a warning;
* ``'fp16'``: fp16 on a CUDA GPU; on any other device fp32 with a warning
  (CPU kernels for fp16 are mostly slow emulation);
* ``'auto'``: bf16 where it is fast, otherwise fp32 (said at INFO level).
  fp16 is never picked automatically: its range (6.5e4) can overflow a
  teacher's activations.
"""
import functools
from typing import Optional, Set, Tuple

import torch

PRECISIONS = ('auto', 'fp32', 'bf16', 'fp16')
DTYPES = dict(fp32=torch.float32, bf16=torch.bfloat16, fp16=torch.float16)


@functools.lru_cache(maxsize=1)
def cpu_flags() -> Set[str]:
    """The CPU's instruction-set flags (lower case, e.g. ``avx512_bf16``):
    torch's own CPU capability probe, else Linux ``/proc/cpuinfo``."""
    probe = getattr(getattr(torch._C, '_cpu', None), '_get_cpu_capability',
                    None)
    if probe is not None:
        return {k.lower() for k, v in probe().items() if v is True}
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('flags'):
                    return set(line.split(':', 1)[1].split())
    except OSError:
        pass
    return set()


def bf16_support(device: torch.device) -> Optional[str]:
    """How ``device`` runs bf16: ``'fast'`` (AMX-BF16 CPU, CUDA with bf16
    support), ``'slow'`` (a CPU with AVX512-BF16 but no AMX) or None (no
    bf16 instructions: emulation only)."""
    device = torch.device(device)
    if device.type == 'cuda':
        fast = torch.cuda.is_bf16_supported(including_emulation=False)
        return 'fast' if fast else None
    if device.type == 'cpu':
        flags = cpu_flags()
        return 'fast' if 'amx_bf16' in flags else \
            'slow' if 'avx512_bf16' in flags else None
    return None


def resolve_precision(requested: str,
                      device: torch.device) -> Tuple[torch.dtype,
                                                     Optional[str]]:
    """The teacher's dtype on ``device`` for ``teacher_precision``.

    Args:
        requested (str): One of :data:`PRECISIONS`.
        device (torch.device): Where the teacher runs.

    Returns:
        tuple: ``(dtype, message)``; ``message`` (None when there is nothing
        to say) explains a dtype other than the one asked for, or a slow
        one.
    """
    if requested not in PRECISIONS:
        raise ValueError(f'teacher_precision: {requested!r} is not one of '
                         f'{PRECISIONS}')
    device = torch.device(device)
    if requested == 'fp32':
        return torch.float32, None
    if requested == 'fp16':
        if device.type == 'cuda':
            return torch.float16, None
        return torch.float32, (
            f"teacher_precision='fp16' is not supported on {device.type}: "
            f'the teacher runs in fp32 (bf16 or fp32 are the CPU options)')
    support = bf16_support(device)
    if support == 'fast':
        return torch.bfloat16, None
    if device.type == 'cpu':
        why = ('this CPU has AVX512-BF16 but no AMX-BF16: bf16 runs slower '
               'than fp32 on it' if support == 'slow' else
               'this CPU has no bf16 instructions (AMX-BF16 / AVX512-BF16)')
    else:
        why = f'{device} has no fast bf16 support'
    if requested == 'auto':
        return torch.float32, (
            f"teacher_precision='auto': {why}, so the teacher runs in fp32")
    if support == 'slow':
        return torch.bfloat16, (
            f"teacher_precision='bf16': {why}; the teacher runs in bf16 as "
            f"asked (half the memory), 'auto' or 'fp32' is faster here")
    return torch.float32, (
        f"teacher_precision='bf16': {why}: the teacher runs in fp32 instead "
        f'of a slow emulated bf16')


def to_fp32(obj):
    """``obj`` with every floating tensor in it (nested in tuples, lists and
    dicts) as a contiguous fp32 tensor; a tensor already so is returned as
    it is."""
    if isinstance(obj, torch.Tensor):
        if obj.is_floating_point():
            return obj.to(torch.float32,
                          memory_format=torch.contiguous_format)
        return obj
    if isinstance(obj, (tuple, list)):
        out = [to_fp32(x) for x in obj]
        return type(obj)(out) if not hasattr(obj, '_fields') else \
            type(obj)(*out)
    if isinstance(obj, dict):
        return type(obj)((k, to_fp32(v)) for k, v in obj.items())
    return obj
