"""Build a student or teacher from an inline dict or a config path; load
a plain student file given to a distiller (``load_from``)."""
import os.path as osp
from collections import OrderedDict
from typing import Optional, Tuple, Union

import torch.nn as nn
from mmengine.config import Config, ConfigDict
from mmengine.registry import MODELS as ROOT_MODELS
from mmengine.registry import DefaultScope

from mmengine.logging import print_log

from mmkd.utils import load_state_dict

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


def adopt_plain_student_state(distiller: nn.Module, state_dict: dict,
                              prefix: str, *args) -> None:
    """Load-state-dict pre-hook of the distillers: a plain student file.

    mmengine's ``load_from`` loads non-strictly, so a plain mmdet / mmseg /
    timm checkpoint (keys without ``student.``) would load nothing and only
    warn. When no key starts with ``student.``, the file is taken as the
    student's own: it is loaded into the student strictly (a mismatch is a
    ValueError naming the keys) and its keys get the ``student.`` prefix, so
    the distiller's load goes on with them. Distiller checkpoints (resume,
    ``load_from`` of an mmkd run) are left as they are.
    """
    if prefix or not state_dict or any(
            k.startswith('student.') for k in state_dict):
        return
    student = distiller.student
    print_log(
        'the checkpoint loaded into the distiller (load_from / resume) has '
        f'no "student." keys: loading it as a plain {type(student).__name__}'
        ' checkpoint into the student (strict)', logger='current')
    plain = OrderedDict(state_dict)
    metadata = getattr(state_dict, '_metadata', None)
    if metadata is not None:
        plain._metadata = metadata
    load_state_dict(student, plain, 'load_from / resume', 'student')
    for key in list(state_dict):
        state_dict['student.' + key] = state_dict.pop(key)
    if metadata is not None:  # module versions, for the distiller's load
        for key in list(metadata):
            metadata['student' + ('.' + key if key else '')] = metadata[key]
