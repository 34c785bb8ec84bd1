"""Checkpoint loading policy for torch >= 2.6 (``weights_only=True`` default).

One policy, used everywhere mmkd or mmengine reads a local checkpoint:

* Everything is loaded with ``torch.load(..., weights_only=True)``.
* mmengine's own checkpoints (resume / ``load_from``) hold a few non-tensor
  objects in their ``message_hub`` (``HistoryBuffer`` with numpy arrays).
  Those exact types are added to torch's allow-list once, at ``import mmkd``.
  A pickled ``HistoryBuffer`` also refers to its statistics methods through
  ``builtins.getattr``; ``getattr`` is allowed only while loading a file whose
  non-default objects are all of that mmengine set (and even then the
  weights-only unpickler calls nothing outside its allow-list).
* Any other object in a file is refused with :class:`UnsafeCheckpointError`,
  which names the file and the objects and says how to allow them: either
  ``torch.serialization.add_safe_globals([...])`` for the named classes, or,
  for a file you trust completely, the environment variable
  ``MMKD_TRUST_CHECKPOINTS=1`` (loads with ``weights_only=False``).

``register_checkpoint_policy`` installs :func:`load_checkpoint` as mmengine's
loader for local paths, so the runner's ``load_from``/``resume``, mmdet's
``init_detector`` and mmseg's ``init_model`` all go through it.
"""
import os
import os.path as osp
import pickle
import warnings
from typing import Any, Optional, Union

import numpy as np
import torch

TRUST_ENV = 'MMKD_TRUST_CHECKPOINTS'


class UnsafeCheckpointError(pickle.UnpicklingError):
    """A checkpoint needs unpickling of objects outside the allow-list."""


def _mmengine_safe_globals() -> list:
    """The non-tensor types that mmengine 0.10 writes into its checkpoints."""
    from mmengine.logging import HistoryBuffer
    safe = [HistoryBuffer, np.ndarray, np.dtype]
    safe.append(np._core.multiarray._reconstruct if hasattr(np, '_core') else
                np.core.multiarray._reconstruct)
    safe.append(np._core.multiarray.scalar if hasattr(np, '_core') else
                np.core.multiarray.scalar)
    # numpy >= 1.25 pickles dtypes through their per-type classes
    dtypes = getattr(np, 'dtypes', None)
    if dtypes is not None:
        safe += [
            getattr(dtypes, name) for name in dir(dtypes)
            if name.endswith('DType') and isinstance(getattr(dtypes, name), type)
        ]
    return safe


def _qualname(obj) -> str:
    return f'{obj.__module__}.{obj.__qualname__}'


def allow_mmengine_checkpoints() -> None:
    """Allow-list the types of mmengine's runner checkpoints (idempotent)."""
    torch.serialization.add_safe_globals(_mmengine_safe_globals())


def load_checkpoint(filename: Union[str, os.PathLike],
                    map_location: Optional[Any] = 'cpu') -> Any:
    """Load a local checkpoint under mmkd's policy.

    Args:
        filename (str | PathLike): Path of the checkpoint file.
        map_location (Any, optional): As in ``torch.load``. Defaults to
            ``'cpu'``.

    Returns:
        Any: The loaded object (usually a dict with ``state_dict``).

    Raises:
        FileNotFoundError: The file does not exist (the message names it).
        UnsafeCheckpointError: The file holds objects outside the allow-list
            and ``MMKD_TRUST_CHECKPOINTS=1`` is not set.
    """
    filename = os.fspath(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'checkpoint file "{filename}" does not exist')
    try:
        return torch.load(filename, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        try:
            names = torch.serialization.get_unsafe_globals_in_checkpoint(
                filename)
        except Exception:  # not a zip checkpoint: fall back to torch's text
            names = []
        mmengine_set = {_qualname(o) for o in _mmengine_safe_globals()}
        mmengine_set.add('builtins.getattr')
        if names and set(names) <= mmengine_set:  # an mmengine checkpoint
            with torch.serialization.safe_globals([getattr]):
                return torch.load(
                    filename, map_location=map_location, weights_only=True)
        names = [n for n in names if n not in mmengine_set]
        if os.environ.get(TRUST_ENV) == '1':
            warnings.warn(f'{TRUST_ENV}=1: loading "{filename}" with full '
                          'unpickling (weights_only=False)')
            return torch.load(
                filename, map_location=map_location, weights_only=False)
        what = ', '.join(names) if names else str(err).splitlines()[0]
        raise UnsafeCheckpointError(
            f'checkpoint "{filename}" needs unpickling of objects that are '
            f'not allowed under weights_only=True: {what}. If you trust this '
            'file, either allow those classes with '
            'torch.serialization.add_safe_globals([...]) before loading, or '
            f'set the environment variable {TRUST_ENV}=1 to load it with '
            'weights_only=False.') from None


def _mmengine_local_loader(filename: str, map_location=None) -> Any:
    filename = osp.expanduser(filename)
    return load_checkpoint(filename, map_location=map_location)


def register_checkpoint_policy() -> None:
    """Route mmengine's local-file checkpoint loading through the policy."""
    from mmengine.runner.checkpoint import CheckpointLoader
    allow_mmengine_checkpoints()
    CheckpointLoader.register_scheme(
        prefixes='', loader=_mmengine_local_loader, force=True)
