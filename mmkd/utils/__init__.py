from .checkpoint import (UnsafeCheckpointError, allow_mmengine_checkpoints,
                         download_checkpoint, is_url, load_checkpoint,
                         register_checkpoint_policy)
from .device import adapt_cfg_to_device, init_cpu_dist
from .precision import bf16_support, resolve_precision
from .preflight import check_checkpoints, check_data_paths, check_file
from .weights import load_state_dict, load_weights, read_state_dict

__all__ = [
    'UnsafeCheckpointError', 'allow_mmengine_checkpoints', 'load_checkpoint',
    'register_checkpoint_policy', 'adapt_cfg_to_device', 'init_cpu_dist', 'check_data_paths',
    'check_file', 'download_checkpoint', 'is_url', 'check_checkpoints',
    'load_state_dict', 'load_weights', 'read_state_dict', 'bf16_support',
    'resolve_precision'
]
