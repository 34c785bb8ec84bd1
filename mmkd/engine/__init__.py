from .hooks import DistillWeightHook, StudentCheckpointHook
from .optimizers import Lamb  # noqa: F401

__all__ = ['DistillWeightHook', 'StudentCheckpointHook']
