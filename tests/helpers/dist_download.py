"""A rank of a gloo process group that loads checkpoint URLs (spawned by
tests/test_utils/test_url_checkpoint.py)."""
import contextlib
import io
import json
import os
import os.path as osp
from datetime import timedelta


def _load(kind: str, url: str) -> dict:
    """Load ``url`` with mmkd's or mmengine's loader; what happened."""
    from mmengine.runner import CheckpointLoader

    from mmkd.utils.checkpoint import load_checkpoint
    try:
        if kind == 'mmkd':
            ckpt = load_checkpoint(url)
        else:
            ckpt = CheckpointLoader.load_checkpoint(url, map_location='cpu')
        return dict(ok=True, w=ckpt['state_dict']['w'].tolist())
    except Exception as err:  # reported to the test
        return dict(ok=False, type=type(err).__name__, msg=str(err))


def worker(rank: int, world_size: int, port: int, scenarios: dict,
           out_dir: str) -> None:
    """Join the group, run each scenario, write ``rank<r>.json``.

    Args:
        rank (int): This process's rank (``torch.multiprocessing`` passes it).
        world_size (int): Number of processes.
        port (int): ``MASTER_PORT`` on 127.0.0.1.
        scenarios (dict): name -> dict(kind='mmkd' | 'mmengine', url,
            torch_home (``{rank}`` is replaced), local_rank (None: the
            rank)).
        out_dir (str): Where to write the results.
    """
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port),
                      RANK=str(rank), WORLD_SIZE=str(world_size),
                      OMP_NUM_THREADS='1')
    import torch
    import torch.distributed as dist
    torch.set_num_threads(1)
    dist.init_process_group('gloo', rank=rank, world_size=world_size,
                            timeout=timedelta(seconds=60))
    import mmkd  # noqa: F401  (installs the checkpoint policy)
    results = {}
    for name, spec in scenarios.items():
        os.environ['TORCH_HOME'] = spec['torch_home'].format(rank=rank)
        local = spec.get('local_rank')
        os.environ['LOCAL_RANK'] = str(rank if local is None else local)
        dist.barrier()  # both ranks ask for the URL at the same time
        stderr = io.StringIO()  # the progress bar goes to stderr
        with contextlib.redirect_stderr(stderr):
            results[name] = _load(spec['kind'], spec['url'])
        results[name]['stderr'] = stderr.getvalue()
    dist.destroy_process_group()
    with open(osp.join(out_dir, f'rank{rank}.json'), 'w') as f:
        json.dump(results, f)
