from .checkpoint import (UnsafeCheckpointError, allow_mmengine_checkpoints,
                         load_checkpoint, register_checkpoint_policy)
from .device import adapt_cfg_to_device, init_cpu_dist
from .preflight import check_data_paths, check_file

__all__ = [
    'UnsafeCheckpointError', 'allow_mmengine_checkpoints', 'load_checkpoint',
    'register_checkpoint_policy', 'adapt_cfg_to_device', 'init_cpu_dist', 'check_data_paths',
    'check_file'
]
