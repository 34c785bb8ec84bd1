from .base import BaseDistiller
from .classification import ClassificationDistiller
from .detection import DetectionDistiller
from .segmentation import SegmentationDistiller

__all__ = [
    'BaseDistiller', 'ClassificationDistiller', 'DetectionDistiller',
    'SegmentationDistiller'
]
