from .timm_classifier import TimmClassifier

__all__ = ['TimmClassifier']
