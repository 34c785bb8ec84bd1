"""tools/dist_train.sh: two processes, gloo on CPU, identical parameters."""
import os.path as osp

import torch

from helpers import DET_CONFIG, ROOT, det_options, free_port, run_tool
from mmkd.utils import load_checkpoint


def test_dist_train_two_ranks_agree(demo_root, tmp_path):
    cfg = tmp_path / 'dist_cfg.py'
    cfg.write_text(f"_base_ = '{DET_CONFIG}'\n"
                   "custom_imports = dict(imports=['mmkd', "
                   "'helpers.rank_dump'], allow_failed_imports=False)\n"
                   "custom_hooks = [dict(type='RankParamsDumpHook'), "
                   "dict(type='mmkd.RunInfoHook')]\n")
    work = tmp_path / 'work'
    res = run_tool(
        'dist_train.sh', cfg, 2, '--work-dir', work, '--auto-scale-lr',
        '--cfg-options', *det_options(demo_root, iters=3),
        env=dict(PYTHONPATH=f'{ROOT}:{ROOT}/tests', PORT=str(free_port())))
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-4000:]
    # mmkd.RunInfoHook: 2 processes x 2 images, lr scaled linearly by
    # mmengine from the config's base batch
    from mmengine.config import Config
    demo = Config.fromfile(DET_CONFIG)
    base = demo.auto_scale_lr.base_batch_size
    lr = demo.optim_wrapper.optimizer.lr * 4 / base
    assert ('[mmkd] batch: 2 process(es) x 2 images x 1 accumulation '
            'step(s) = 4 images per optimizer step') in out
    assert (f'[mmkd] lr: {lr:.6g} before the schedule (auto-scaled '
            f'(mmengine, linear) from base batch {base} to 4)') in out
    # the demo's endless sampler, read through mmdet's batch sampler
    assert ('[mmkd] sampler: InfiniteSampler (shuffle=True): endless passes '
            'over') in out
    assert ('each process taking 1/2 of every pass, batched by '
            'AspectRatioBatchSampler') in out
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


def test_dist_train_distiller_with_deep_supervision(demo_root, tmp_path):
    """KD + deep supervision under tools/dist_train.sh with 2 processes:
    identical parameters (student and auxiliary heads), no
    find_unused_parameters, the teacher outside DDP, every term logged."""
    kd_ds = osp.join(ROOT, 'configs/demo/'
                     'retinanet_r18-w32-to-w16_kd-ds_demo-coco.py')
    cfg = tmp_path / 'dist_kd_ds.py'
    cfg.write_text(f"_base_ = '{kd_ds}'\n"
                   "custom_imports = dict(imports=['mmkd', "
                   "'helpers.distill_dump'], allow_failed_imports=False)\n"
                   "custom_hooks = [dict(type='DistillerRankDumpHook')]\n")
    work = tmp_path / 'work'
    opts = [o.replace('model.test_cfg', 'model.student.test_cfg')
            for o in det_options(demo_root, iters=2)]
    res = run_tool(
        'dist_train.sh', cfg, 2, '--work-dir', work, '--cfg-options',
        *opts, 'model.teacher_ckpt=None',
        env=dict(PYTHONPATH=f'{ROOT}:{ROOT}/tests', PORT=str(free_port())))
    log = res.stdout + res.stderr
    assert res.returncode == 0, log[-4000:]
    ranks = [
        torch.load(osp.join(work, f'distill_rank{r}.pth'), weights_only=True)
        for r in (0, 1)
    ]
    for r in ranks:
        assert r['world_size'] == 2 and r['wrapped']
        assert not r['find_unused'] and not r['teacher_in_wrapper']
    sd0, sd1 = ranks[0]['params'], ranks[1]['params']
    assert any(k.startswith('ds_branches.') for k in sd0)
    for key in sd0:
        assert torch.equal(sd0[key], sd1[key]), key
    for term in ('loss_kd_cls_l0', 'ds0.loss_kd_cls_l4', 'ds1.loss_cls',
                 'ds1.loss_bbox'):
        assert term in log, term
