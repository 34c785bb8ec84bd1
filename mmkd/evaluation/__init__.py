"""Evaluation metrics (mmengine ``BaseMetric`` subclasses)."""
from .metrics import Accuracy

__all__ = ['Accuracy']
