"""timm's optimizers, registered for configs (not copies).

``mmkd.Lamb`` is ``timm.optim.Lamb`` (LAMB, You et al.,
https://arxiv.org/abs/1904.00962), the optimizer of the VanillaKD / timm
"ResNet strikes back" A1-A3 recipes::

    optim_wrapper = dict(
        optimizer=dict(type='mmkd.Lamb', lr=5e-3, weight_decay=0.02))
"""
from timm.optim import Lamb

from mmkd.registry import OPTIMIZERS

OPTIMIZERS.register_module(name='Lamb', module=Lamb)

__all__ = ['Lamb']
