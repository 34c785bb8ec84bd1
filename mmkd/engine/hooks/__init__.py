from .distill_weight_hook import DistillWeightHook, distill_scale
from .student_checkpoint_hook import StudentCheckpointHook

__all__ = ['DistillWeightHook', 'distill_scale', 'StudentCheckpointHook']
