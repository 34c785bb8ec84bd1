from .backbones import TimmBackbone
from .classifiers import TimmClassifier
from .data_preprocessors import ClsDataPreprocessor
from .distillers import (BaseDistiller, ClassificationDistiller,
                         DetectionDistiller, SegmentationDistiller)

__all__ = [
    'TimmBackbone', 'TimmClassifier', 'ClsDataPreprocessor', 'BaseDistiller',
    'ClassificationDistiller', 'DetectionDistiller', 'SegmentationDistiller'
]
