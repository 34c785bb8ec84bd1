from .base import BaseDistiller
from .detection import DetectionDistiller
from .segmentation import SegmentationDistiller

__all__ = ['BaseDistiller', 'DetectionDistiller', 'SegmentationDistiller']
