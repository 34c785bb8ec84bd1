"""Helpers shared by the tests (importable as ``helpers``)."""
import os
import os.path as osp
import socket
import subprocess
import sys

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DET_CONFIG = osp.join(ROOT,
                      'configs/demo/retinanet_r18-w16_fpn_demo-coco.py')
SEG_CONFIG = osp.join(ROOT, 'configs/demo/fcn_r18-w16-d8_demo-ade.py')
CLS_CONFIG = osp.join(ROOT, 'configs/demo/resnet18-w8_demo-in1k.py')


def free_port() -> int:
    """A TCP port that is free on 127.0.0.1 now (the OS picks it).

    For a test's ``MASTER_PORT`` / ``PORT``, so that tests running at the
    same time (or a leftover process) never share a port.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def _runtime_options(iters: int) -> list:
    """Small batches, no worker processes, ``iters`` iterations."""
    opts = ['train_dataloader.batch_size=2']
    for split in ('train', 'val', 'test'):
        opts += [
            f'{split}_dataloader.num_workers=0',
            f'{split}_dataloader.persistent_workers=False'
        ]
    return opts + [
        f'train_cfg.max_iters={iters}', f'train_cfg.val_interval={iters}',
        f'default_hooks.checkpoint.interval={iters}',
        'default_hooks.logger.interval=1'
    ]


def det_options(root: str, iters: int = 2) -> list:
    """--cfg-options pointing the demo detection config at ``root``."""
    coco = osp.join(root, 'coco') + '/'
    ann = f'{coco}annotations/instances_val2017.json'
    return [
        f'{split}_dataloader.dataset.data_root={coco}'
        for split in ('train', 'val', 'test')
    ] + [
        f'val_evaluator.ann_file={ann}',
        f'test_evaluator.ann_file={ann}',
        # after 2 iterations no score passes RetinaNet's 0.05 threshold
        'model.test_cfg.score_thr=0.0',
    ] + _runtime_options(iters)


def seg_options(root: str, iters: int = 2) -> list:
    """--cfg-options pointing the demo segmentation config at ``root``."""
    ade = osp.join(root, 'ade') + '/'
    return [
        f'{split}_dataloader.dataset.data_root={ade}'
        for split in ('train', 'val', 'test')
    ] + _runtime_options(iters)


def cls_options(root: str, iters: int = 2) -> list:
    """--cfg-options pointing the demo classification config at ``root``."""
    imagenet = osp.join(root, 'imagenet') + '/'
    return [
        f'{split}_dataloader.dataset.data_root={imagenet}'
        for split in ('train', 'val', 'test')
    ] + _runtime_options(iters)


def run_tool(*args, timeout: int = 600, env: dict = None):
    """Run a script under tools/ in a fresh process; return CompletedProcess."""
    full_env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS='1')
    full_env.update(env or {})
    script = args[0]
    cmd = (['bash'] if script.endswith('.sh') else [sys.executable])
    cmd += [osp.join(ROOT, 'tools', script), *map(str, args[1:])]
    return subprocess.run(
        cmd, cwd=ROOT, env=full_env, capture_output=True, text=True,
        timeout=timeout)
