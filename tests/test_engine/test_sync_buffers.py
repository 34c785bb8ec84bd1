"""The classification runtime averages BN statistics over the processes.

VanillaKD (timm's ``--dist-bn reduce``) all-reduces the BN running
statistics every epoch; mmengine's DDP does not broadcast buffers, so
``configs/_base_/cls_runtime.py`` adds mmengine's ``SyncBuffersHook``. Two
gloo processes train the demo classifier for one epoch on different images;
each rank's buffers before the sync are dumped, and the checkpoint rank 0
writes must hold their mean.
"""
import os.path as osp

import torch

from helpers import CLS_CONFIG, ROOT, free_port, run_tool
from mmkd.utils import load_checkpoint


def _options(root: str) -> list:
    imagenet = osp.join(root, 'imagenet') + '/'
    opts = [
        f'{split}_dataloader.dataset.data_root={imagenet}'
        for split in ('train', 'val', 'test')
    ]
    for split in ('train', 'val', 'test'):
        opts += [
            f'{split}_dataloader.num_workers=0',
            f'{split}_dataloader.persistent_workers=False'
        ]
    return opts + [
        'train_dataloader.batch_size=2',
        'train_dataloader.dataset.indices=8',  # 2 iterations per rank
        'default_hooks.checkpoint.interval=1',
        'default_hooks.checkpoint.by_epoch=True',
        'default_hooks.logger.interval=1',
    ]


def test_bn_statistics_are_the_mean_of_the_ranks(demo_root, tmp_path):
    cfg = tmp_path / 'sync_cfg.py'
    cfg.write_text(
        f"_base_ = '{CLS_CONFIG}'\n"
        "custom_imports = dict(imports=['mmkd', 'helpers.rank_buffers'], "
        "allow_failed_imports=False)\n"
        "custom_hooks = [dict(type='RankBuffersDumpHook')]\n"
        "train_cfg = dict(_delete_=True, type='EpochBasedTrainLoop', "
        "max_epochs=1, val_begin=2)\n"
        "train_dataloader = dict(sampler=dict(_delete_=True, "
        "type='DefaultSampler', shuffle=True))\n")
    work = tmp_path / 'work'
    res = run_tool(
        'dist_train.sh', cfg, 2, '--work-dir', work, '--cfg-options',
        *_options(demo_root),
        env=dict(PYTHONPATH=f'{ROOT}:{ROOT}/tests', PORT=str(free_port())))
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-4000:]
    # mmkd.RunInfoHook on 2 processes
    assert ('[mmkd] batch: 2 process(es) x 2 images x 1 accumulation '
            'step(s) = 4 images per optimizer step') in out
    assert '[mmkd] sampler: DefaultSampler (shuffle=True): 4 of 8 samples ' \
        'per process' in out

    ranks = [
        torch.load(osp.join(work, f'buffers_epoch1_rank{r}.pth'),
                   weights_only=True) for r in (0, 1)
    ]
    assert [r['world_size'] for r in ranks] == [2, 2]
    b0, b1 = ranks[0]['buffers'], ranks[1]['buffers']
    stats = [k for k in b0 if k.endswith(('running_mean', 'running_var'))]
    assert len(stats) >= 20
    # different images on each rank: before the sync the statistics differ
    assert any(not torch.allclose(b0[k], b1[k]) for k in stats)
    saved = load_checkpoint(osp.join(work, 'epoch_1.pth'))['state_dict']
    for key in stats:
        torch.testing.assert_close(
            saved[key], (b0[key] + b1[key]) / 2, msg=key)
