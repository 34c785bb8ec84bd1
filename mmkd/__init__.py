"""mmkd: knowledge distillation for OpenMMLab 2.0 (mmdet, mmseg, timm).

Importing the package registers its modules in child registries of
mmengine's (scope ``mmkd``) and installs the checkpoint loading policy
(:mod:`mmkd.utils.checkpoint`).
"""
from . import (datasets, engine, evaluation, losses, models,  # noqa: F401
               registry)
from .utils import register_checkpoint_policy
from .version import __version__

register_checkpoint_policy()

__all__ = ['__version__']
