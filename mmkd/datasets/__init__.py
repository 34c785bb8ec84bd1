from .imagenet_folder import ImageNetFolder
from .samplers import RepeatAugSampler
from .transforms import PackClsInputs, TimmEvalTransform, TimmTrainTransform

__all__ = [
    'ImageNetFolder', 'PackClsInputs', 'RepeatAugSampler', 'TimmEvalTransform',
    'TimmTrainTransform'
]
