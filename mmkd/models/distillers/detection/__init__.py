"""Detection distillation: the distiller, the dense and two-stage paths,
and the per-family adapters."""
from .distiller import DetectionDistiller
from .families import DENSE, TWO_STAGE, family_of

__all__ = ['DetectionDistiller', 'DENSE', 'TWO_STAGE', 'family_of']
