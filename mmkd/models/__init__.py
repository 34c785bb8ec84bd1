from .distillers import BaseDistiller, DetectionDistiller

__all__ = ['BaseDistiller', 'DetectionDistiller']
