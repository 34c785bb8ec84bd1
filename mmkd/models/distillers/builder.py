"""Build a student or teacher from an inline dict or a config path."""
import os.path as osp
from typing import Optional, Tuple, Union

import torch.nn as nn
from mmengine.config import Config, ConfigDict
from mmengine.registry import MODELS as ROOT_MODELS
from mmengine.registry import DefaultScope

from mmkd.utils import load_checkpoint

ModelSpec = Union[str, dict, ConfigDict]


def load_model_cfg(spec: ModelSpec,
                   default_scope: str) -> Tuple[ConfigDict, str, Optional[Config]]:
    """Resolve ``spec`` to ``(model cfg, scope, full config or None)``.

    Args:
        spec (str | dict): An inline model dict, an ``mmdet::``/``mmseg::``
            config path, or a local config file.
        default_scope (str): Scope for inline dicts (``mmdet``, ``mmseg``).

    Returns:
        tuple: The model config, the scope to build it in, and the full
        config it came from (None for inline dicts).
    """
    if isinstance(spec, str):
        if '::' in spec:
            from mmengine.hub import get_config
            cfg = get_config(spec)
        else:
            if not osp.isfile(spec):
                raise FileNotFoundError(f'model config "{spec}" does not exist')
            cfg = Config.fromfile(spec)
        if 'model' not in cfg:
            raise KeyError(f'config "{spec}" has no "model" key')
        return cfg.model, cfg.get('default_scope', default_scope), cfg
    return ConfigDict(spec), spec.get('_scope_', default_scope), None


def build_model(spec: ModelSpec, default_scope: str) -> nn.Module:
    """Build a plain mmdet/mmseg/timm model from ``spec`` in its own scope."""
    model_cfg, scope, _ = load_model_cfg(spec, default_scope)
    model_cfg = model_cfg.copy()
    model_cfg.pop('_scope_', None)
    # mmengine's root registry switches to the registry of the default
    # scope (mmdet.registry.MODELS, ...) and imports its modules
    with DefaultScope.overwrite_default_scope(scope):
        return ROOT_MODELS.build(model_cfg)


def load_weights(model: nn.Module, filename: str, what: str = 'teacher') -> dict:
    """Load ``filename`` into ``model`` strictly; errors name file and keys.

    Args:
        model (nn.Module): The model to fill.
        filename (str): Checkpoint path (loaded under mmkd's policy).
        what (str): Name used in error messages. Defaults to ``'teacher'``.

    Returns:
        dict: The checkpoint's ``meta`` (empty if it has none).
    """
    ckpt = load_checkpoint(filename, map_location='cpu')
    state = ckpt.get('state_dict', ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(state, dict):
        raise TypeError(f'{what} checkpoint "{filename}" holds no state dict')
    state = {(k[7:] if k.startswith('module.') else k): v
             for k, v in state.items()}
    # the model's own key adaptation (e.g. TimmClassifier accepts plain
    # timm keys) before the comparison
    for hook in model._load_state_dict_pre_hooks.values():
        hook(state, '', {}, True, [], [], [])
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shape = sorted(k for k in set(own) & set(state)
                   if own[k].shape != state[k].shape)
    if missing or unexpected or shape:
        def few(keys):
            return ', '.join(keys[:5]) + (' ...' if len(keys) > 5 else '')
        parts = []
        if missing:
            parts.append(f'{len(missing)} missing keys ({few(missing)})')
        if unexpected:
            parts.append(f'{len(unexpected)} unexpected keys '
                         f'({few(unexpected)})')
        if shape:
            parts.append('shape mismatch ' + ', '.join(
                f'{k}: model {tuple(own[k].shape)} vs file '
                f'{tuple(state[k].shape)}' for k in shape[:5]))
        raise ValueError(f'{what} checkpoint "{filename}" does not fit the '
                         f'{what} model: ' + '; '.join(parts))
    model.load_state_dict(state, strict=True)
    return ckpt.get('meta', {}) or {}
