from .distill_weight_hook import DistillWeightHook, distill_scale
from .effective_batch_hook import EffectiveBatchHook, accumulation_steps
from .run_info_hook import RunInfoHook, describe_sampler, run_info
from .student_checkpoint_hook import StudentCheckpointHook

__all__ = [
    'DistillWeightHook', 'distill_scale', 'EffectiveBatchHook',
    'accumulation_steps', 'RunInfoHook', 'describe_sampler', 'run_info',
    'StudentCheckpointHook'
]
