# flake8: noqa: E402
# first: the modules below need torch >= 2.5 (a clear error, not an
# AttributeError, on an older one)
from .compat import TORCH_MIN, check_torch_version

check_torch_version()

from .checkpoint import (CorruptCheckpointError, UnsafeCheckpointError,
                         allow_mmengine_checkpoints, check_checkpoint_file,
                         download_checkpoint, is_url, load_checkpoint,
                         register_checkpoint_policy)
from .device import adapt_cfg_to_device, init_cpu_dist
from .precision import bf16_support, resolve_precision
from .preflight import (check_checkpoints, check_data_paths, check_file,
                        train_splits)
from .weights import load_state_dict, load_weights, read_state_dict

__all__ = [
    'TORCH_MIN', 'check_torch_version', 'CorruptCheckpointError',
    'UnsafeCheckpointError', 'allow_mmengine_checkpoints',
    'check_checkpoint_file', 'load_checkpoint', 'register_checkpoint_policy',
    'adapt_cfg_to_device', 'init_cpu_dist', 'check_data_paths', 'check_file',
    'download_checkpoint', 'is_url', 'check_checkpoints', 'train_splits',
    'load_state_dict', 'load_weights', 'read_state_dict', 'bf16_support',
    'resolve_precision'
]
