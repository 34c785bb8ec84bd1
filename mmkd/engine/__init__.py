from .hooks import DistillWeightHook, StudentCheckpointHook

__all__ = ['DistillWeightHook', 'StudentCheckpointHook']
