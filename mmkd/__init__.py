"""mmkd: knowledge distillation for OpenMMLab 2.0 (mmdet, mmseg, timm).

Importing the package registers its modules in child registries of
mmengine's (scope ``mmkd``) and installs the checkpoint loading policy
(:mod:`mmkd.utils.checkpoint`). It needs torch >= 2.5 and says so
(:mod:`mmkd.utils.compat`).
"""
# first: on an older torch the imports below fail with an AttributeError
from .utils.compat import check_torch_version

check_torch_version()

from . import (datasets, engine, evaluation, losses, models,  # noqa: E402,F401
               registry)
from .utils import register_checkpoint_policy  # noqa: E402
from .version import __version__  # noqa: E402

register_checkpoint_policy()

__all__ = ['__version__']
