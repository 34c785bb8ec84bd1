from .imagenet_folder import ImageNetFolder
from .transforms import PackClsInputs

__all__ = ['ImageNetFolder', 'PackClsInputs']
