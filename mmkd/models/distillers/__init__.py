from .base import BaseDistiller
from .detection import DetectionDistiller

__all__ = ['BaseDistiller', 'DetectionDistiller']
