from .distillers import (BaseDistiller, DetectionDistiller,
                         SegmentationDistiller)

__all__ = ['BaseDistiller', 'DetectionDistiller', 'SegmentationDistiller']
