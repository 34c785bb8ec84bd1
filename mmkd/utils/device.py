"""Adapt a config to the machine it runs on (CPU-only runs need no flags)."""
from typing import Any, List

import torch
from mmengine.config import Config

# mmcv's names for synchronised batch norm, and what they become on CPU
_SYNC_BN = {'SyncBN': 'BN', 'MMSyncBN': 'BN', 'mmcv.SyncBN': 'BN'}


def _replace_sync_bn(node: Any, path: str, found: List[str]) -> None:
    if isinstance(node, dict):
        if node.get('type') in _SYNC_BN:
            found.append(path or '<root>')
            node['type'] = _SYNC_BN[node['type']]
        for key, value in node.items():
            _replace_sync_bn(value, f'{path}.{key}' if path else key, found)
    elif isinstance(node, (list, tuple)):
        for i, value in enumerate(node):
            _replace_sync_bn(value, f'{path}[{i}]', found)


def adapt_cfg_to_device(cfg: Config, launcher: str = 'none') -> List[str]:
    """Make a GPU-oriented config run on a machine without CUDA.

    Without CUDA: ``SyncBN`` becomes ``BN`` (torch's SyncBatchNorm needs a
    GPU), ``sync_bn`` is dropped, and a distributed run uses the ``gloo``
    backend with a device-less DDP wrapper. With CUDA nothing changes.

    Args:
        cfg (Config): The runner config, modified in place.
        launcher (str): The job launcher. Defaults to ``'none'``.

    Returns:
        list[str]: One human-readable line per change made.
    """
    if torch.cuda.is_available():
        return []
    notes = []
    found: List[str] = []
    _replace_sync_bn(cfg.get('model'), 'model', found)
    if found:
        notes.append('no CUDA: SyncBN -> BN at ' + ', '.join(found))
    if cfg.get('sync_bn'):
        notes.append(f'no CUDA: ignoring sync_bn={cfg.sync_bn!r}')
        cfg.sync_bn = None
    if launcher != 'none':
        env_cfg = cfg.setdefault('env_cfg', {})
        dist_cfg = env_cfg.setdefault('dist_cfg', {})
        if dist_cfg.get('backend', 'nccl') != 'gloo':
            notes.append(f'no CUDA: dist backend {dist_cfg.get("backend", "nccl")}'
                         ' -> gloo')
            dist_cfg['backend'] = 'gloo'
        wrapper = cfg.get('model_wrapper_cfg') or dict(
            type='MMDistributedDataParallel')
        wrapper['device_ids'] = None
        # the keys mmengine passes when it builds the wrapper itself
        wrapper.setdefault('broadcast_buffers', False)
        wrapper.setdefault('find_unused_parameters',
                           cfg.get('find_unused_parameters', False))
        cfg.model_wrapper_cfg = wrapper
    return notes


def init_cpu_dist(launcher: str) -> bool:
    """Start the gloo process group of a ``pytorch`` launch without CUDA.

    mmengine's ``init_dist`` calls ``torch.cuda.set_device`` first, which
    fails without a GPU; once the group exists the runner does not call it.

    Args:
        launcher (str): The job launcher.

    Returns:
        bool: Whether a process group was started here.
    """
    import torch.distributed as dist
    if (launcher != 'pytorch' or torch.cuda.is_available()
            or dist.is_initialized()):
        return False
    dist.init_process_group(backend='gloo')
    return True
