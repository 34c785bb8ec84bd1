"""The oldest torch mmkd runs on, checked first thing at ``import mmkd``.

torch 2.5 is the first release with everything mmkd calls:
``torch.serialization.get_unsafe_globals_in_checkpoint`` and
``torch.serialization.safe_globals`` (the checkpoint policy; 2.4 has only
``add_safe_globals``) and the ``including_emulation`` argument of
``torch.cuda.is_bf16_supported`` (the teacher's precision). Without the check an older torch (the usual
mmdet 3.3 set-up, torch 2.1) fails with an ``AttributeError`` deep inside a
config's ``custom_imports``.

This module imports nothing at module level, so ``setup.py`` reads
:data:`TORCH_MIN` from it without torch installed.
"""
import re
from typing import Optional, Tuple

#: the oldest supported torch, as (major, minor)
TORCH_MIN: Tuple[int, int] = (2, 5)
#: the same as a pip requirement (``setup.py`` declares it)
TORCH_REQUIREMENT = 'torch>={}.{}'.format(*TORCH_MIN)


def parse_version(version: str) -> Tuple[int, int]:
    """``(major, minor)`` of a torch version string.

    Args:
        version (str): e.g. ``'2.5.1+cu124'`` or ``'2.6.0a0+git1234'``.

    Returns:
        tuple[int, int]: e.g. ``(2, 5)``.

    Raises:
        ValueError: The string does not start with ``<major>.<minor>``.
    """
    match = re.match(r'\s*(\d+)\.(\d+)', str(version))
    if match is None:
        raise ValueError(f'cannot read a torch version from "{version}"')
    return int(match.group(1)), int(match.group(2))


def check_torch_version(found: Optional[str] = None) -> None:
    """Refuse a torch older than :data:`TORCH_MIN`.

    Args:
        found (str, optional): The version to check. Defaults to None
            (``torch.__version__`` of the installed torch).

    Raises:
        ImportError: The version is older than :data:`TORCH_MIN`; the
            message names the found and the needed version and how to fix
            it.
    """
    if found is None:
        import torch
        found = torch.__version__
    if parse_version(found) >= TORCH_MIN:
        return
    need = '{}.{}'.format(*TORCH_MIN)
    raise ImportError(
        f'mmkd needs torch >= {need}, found torch {found}. mmkd calls '
        'torch.serialization.get_unsafe_globals_in_checkpoint / safe_globals '
        'and torch.cuda.is_bf16_supported(including_emulation=...), which '
        f'older releases lack. Install a newer torch (pip install '
        f'"{TORCH_REQUIREMENT}") together with mmcv 2.1.0 built for it '
        '(prebuilt mmcv 2.1.0 wheels stop at torch 2.1: build it from source; '
        'tools/setup_env.sh sets up a tested environment).')
