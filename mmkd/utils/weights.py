"""Load a checkpoint file's weights into a model, strictly.

The one implementation behind the distillers' ``teacher_ckpt`` /
``student_ckpt``, ``TimmClassifier(checkpoint=)`` and
``TimmBackbone(checkpoint=)``:

* the file (local path or ``http(s)://`` URL) is read under mmkd's
  ``weights_only`` policy (:func:`mmkd.utils.load_checkpoint`);
* the weights are taken from the wrapper users meet: ``state_dict_ema``,
  ``model_ema`` (timm's EMA weights), ``state_dict`` (mmengine, mmdet,
  mmseg), ``model`` or a bare state dict; ``ckpt_key`` picks one and the
  choice is logged;
* ``module.`` prefixes (DDP) are removed;
* the model's own ``load_state_dict`` decides, so every module's
  ``_load_from_state_dict`` (version-based key upgrades of mmcv / mmdet /
  mmseg, BatchNorm's ``num_batches_tracked``) and the model's load-state-dict
  pre-hooks apply; any missing, unexpected or mis-shaped key is an error
  naming the file and a few keys of each kind. A missing
  ``num_batches_tracked`` is not one (as in mmengine's loader: old files lack
  it and it is unused in training and inference).
"""
import re
from collections import OrderedDict
from typing import Sequence, Tuple

import torch
import torch.nn as nn
from mmengine.logging import print_log

from .checkpoint import load_checkpoint

#: the wrappers ``ckpt_key='auto'`` looks for, in this order (timm's
#: ``load_checkpoint`` order: EMA weights first)
AUTO_KEYS = ('state_dict_ema', 'model_ema', 'state_dict', 'model')


#: torch's message for a parameter of another shape
_SIZE_MISMATCH = re.compile(
    r'size mismatch for (\S+): copying a param with shape '
    r'torch\.Size\(\[(.*?)\]\) from checkpoint, the shape in current model '
    r'is torch\.Size\(\[(.*?)\]\)')


def _shape_error(msg: str) -> str:
    """``key: model (..) vs file (..)`` from torch's size-mismatch text
    (other messages as they are)."""
    match = _SIZE_MISMATCH.match(msg)
    if match is None:
        return msg
    key, file, model = match.groups()
    return f'{key}: model ({model}) vs file ({file})'


def _few(keys: Sequence[str], n: int = 5) -> str:
    keys = list(keys)
    return ', '.join(keys[:n]) + (' ...' if len(keys) > n else '')


def _strip_module(state: dict) -> 'OrderedDict':
    """``state`` without DDP's ``module.`` prefixes, keeping ``_metadata``
    (the module versions that ``_load_from_state_dict`` upgrades rely on)."""

    def strip(key: str) -> str:
        if key == 'module':
            return ''
        return key[len('module.'):] if key.startswith('module.') else key

    out = OrderedDict((strip(k), v) for k, v in state.items())
    metadata = getattr(state, '_metadata', None)
    if metadata is not None:
        out._metadata = type(metadata)(
            (strip(k), v) for k, v in metadata.items())
    return out


def read_state_dict(filename: str,
                    ckpt_key: str = 'auto',
                    what: str = 'model') -> Tuple['OrderedDict', dict]:
    """The state dict and ``meta`` of a checkpoint file.

    Args:
        filename (str): Local path or ``http(s)://`` URL.
        ckpt_key (str): Which entry of the file holds the weights: ``'auto'``
            (the first of ``state_dict_ema``, ``model_ema``, ``state_dict``,
            ``model`` that the file has, else the file itself), ``''`` (the
            file itself is the state dict) or any key, e.g. ``'state_dict'``
            to take the live weights of a timm file that also has EMA ones.
            Defaults to ``'auto'``.
        what (str): What the weights are for, in messages. Defaults to
            ``'model'``.

    Returns:
        tuple: The state dict (``module.`` removed) and the file's ``meta``
        (empty if none).

    Raises:
        KeyError: ``ckpt_key`` is not in the file (the message names the file
            and the keys it has).
        TypeError: The chosen entry is not a dict of tensors.
    """
    ckpt = load_checkpoint(filename, map_location='cpu')
    if not isinstance(ckpt, dict):
        raise TypeError(f'{what} checkpoint "{filename}" holds no state dict '
                        f'but a {type(ckpt).__name__}')
    if ckpt_key == 'auto':
        key = next((k for k in AUTO_KEYS if isinstance(ckpt.get(k), dict)),
                   '')
    elif ckpt_key and ckpt_key not in ckpt:
        raise KeyError(f'{what} checkpoint "{filename}" has no "{ckpt_key}" '
                       f'(ckpt_key); it has: {_few(sorted(map(str, ckpt)))}')
    else:
        key = ckpt_key
    state = ckpt[key] if key else ckpt
    others = [k for k in AUTO_KEYS if k != key and isinstance(ckpt.get(k),
                                                               dict)]
    print_log(
        f'{what} checkpoint "{filename}": loading '
        + (f'"{key}"' if key else 'the file as a bare state dict')
        + (f' (the file also has {others})' if others else ''),
        logger='current')
    bad = [str(k) for k, v in state.items()
           if not isinstance(v, torch.Tensor)] if isinstance(state,
                                                             dict) else []
    if not isinstance(state, dict) or not state or bad:
        raise TypeError(
            f'{what} checkpoint "{filename}" holds no state dict (a dict of '
            f'tensors, bare or under {"/".join(AUTO_KEYS)})'
            + (f'; non-tensor entries: {_few(bad)}' if bad else ''))
    meta = ckpt.get('meta') if key else None
    return _strip_module(state), meta if isinstance(meta, dict) else {}


def load_state_dict(model: nn.Module,
                    state: dict,
                    source: str,
                    what: str = 'model') -> None:
    """``model.load_state_dict(state)``, strict, with a clear error.

    Args:
        model (nn.Module): The model to fill.
        state (dict): The state dict, in the model's keys (or keys its
            load-state-dict hooks convert).
        source (str): Where ``state`` came from (a file name), for messages.
        what (str): What the model is, for messages. Defaults to ``'model'``.

    Raises:
        ValueError: Keys are missing, unexpected or of another shape; the
            message names ``source`` and a few keys of each kind.
    """
    found = {}

    def record(module, incompatible):  # runs before torch raises
        found['missing'] = [k for k in incompatible.missing_keys
                            if not k.endswith('num_batches_tracked')]
        found['unexpected'] = list(incompatible.unexpected_keys)

    handle = model.register_load_state_dict_post_hook(record)
    try:
        model.load_state_dict(state, strict=False)
        errors = []
    except RuntimeError as err:  # shapes: torch reports them in any mode
        errors = [e.strip() for e in str(err).split('\n\t')[1:]]
    finally:
        handle.remove()
    missing, unexpected = found.get('missing', []), found.get('unexpected',
                                                              [])
    if not (missing or unexpected or errors):
        return
    parts = []
    if missing:
        parts.append(f'missing keys ({len(missing)}): {_few(missing)}')
    if unexpected:
        parts.append(f'unexpected keys ({len(unexpected)}): '
                     f'{_few(unexpected)}')
    if errors:
        parts.append('shape mismatch '
                     + _few([_shape_error(e) for e in errors]))
    raise ValueError(f'{what} checkpoint "{source}" does not fit the model '
                     f'({type(model).__name__}): ' + '; '.join(parts))


def load_weights(model: nn.Module,
                 filename: str,
                 what: str = 'model',
                 ckpt_key: str = 'auto') -> dict:
    """Read ``filename`` (:func:`read_state_dict`) and load it strictly
    into ``model`` (:func:`load_state_dict`).

    Args:
        model (nn.Module): The model to fill.
        filename (str): Local path or ``http(s)://`` URL.
        what (str): What the model is, for messages. Defaults to
            ``'model'``.
        ckpt_key (str): See :func:`read_state_dict`. Defaults to ``'auto'``.

    Returns:
        dict: The checkpoint's ``meta`` (empty if it has none).
    """
    state, meta = read_state_dict(filename, ckpt_key, what)
    load_state_dict(model, state, filename, what)
    return meta
