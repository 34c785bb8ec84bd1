"""timm's classification losses, registered for configs (not copies).

* ``mmkd.TimmBinaryCrossEntropy``: ``timm.loss.BinaryCrossEntropy``, the
  label loss of the VanillaKD ImageNet recipes (soft ``(B, C)`` targets
  from mixup/cutmix; hard ``(B,)`` labels are one-hot encoded with its
  ``smoothing``);
* ``mmkd.TimmSoftTargetCrossEntropy``: soft ``(B, C)`` targets only
  (:class:`mmkd.TimmClassifier` one-hot encodes hard labels for it);
* ``mmkd.TimmLabelSmoothingCrossEntropy``: hard ``(B,)`` labels only.
"""
from timm.loss import (BinaryCrossEntropy, LabelSmoothingCrossEntropy,
                       SoftTargetCrossEntropy)

from mmkd.registry import MODELS

MODELS.register_module(
    name='TimmBinaryCrossEntropy', module=BinaryCrossEntropy)
MODELS.register_module(
    name='TimmSoftTargetCrossEntropy', module=SoftTargetCrossEntropy)
MODELS.register_module(
    name='TimmLabelSmoothingCrossEntropy', module=LabelSmoothingCrossEntropy)

#: losses that take only soft ``(B, C)`` targets / only hard ``(B,)`` labels
SOFT_TARGET_ONLY = (SoftTargetCrossEntropy, )
HARD_TARGET_ONLY = (LabelSmoothingCrossEntropy, )
