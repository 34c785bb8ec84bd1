"""tools/dist_train.sh: two processes, gloo on CPU, identical parameters."""
import os.path as osp

import torch

from helpers import DET_CONFIG, ROOT, det_options, run_tool
from mmkd.utils import load_checkpoint


def test_dist_train_two_ranks_agree(demo_root, tmp_path):
    cfg = tmp_path / 'dist_cfg.py'
    cfg.write_text(f"_base_ = '{DET_CONFIG}'\n"
                   "custom_imports = dict(imports=['mmkd', "
                   "'helpers.rank_dump'], allow_failed_imports=False)\n"
                   "custom_hooks = [dict(type='RankParamsDumpHook')]\n")
    work = tmp_path / 'work'
    res = run_tool(
        'dist_train.sh', cfg, 2, '--work-dir', work, '--cfg-options',
        *det_options(demo_root, iters=3),
        env=dict(PYTHONPATH=f'{ROOT}:{ROOT}/tests', PORT='29571'))
    assert res.returncode == 0, (res.stdout + res.stderr)[-4000:]
    ranks = [
        torch.load(osp.join(work, f'params_rank{r}.pth'), weights_only=True)
        for r in (0, 1)
    ]
    assert [r['world_size'] for r in ranks] == [2, 2]
    sd0, sd1 = ranks[0]['params'], ranks[1]['params']
    assert sd0.keys() == sd1.keys() and len(sd0) > 50
    for key in sd0:
        assert torch.equal(sd0[key], sd1[key]), key
    # each rank saw different images (DistributedSampler): equal weights
    # after 3 steps mean the gradients were all-reduced; the checkpoint
    # rank 0 wrote is that same model
    ckpt = load_checkpoint(osp.join(work, 'iter_3.pth'))
    for key in sd0:
        assert torch.equal(ckpt['state_dict'][key], sd0[key]), key
