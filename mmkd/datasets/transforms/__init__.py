from .formatting import PackClsInputs
from .timm_transforms import TimmEvalTransform, TimmTrainTransform

__all__ = ['PackClsInputs', 'TimmEvalTransform', 'TimmTrainTransform']
