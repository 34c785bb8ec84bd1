"""Launching a recipe on 1 or 2 processes: ``mmkd.EffectiveBatchHook`` keeps
the published images per optimizer step by gradient accumulation, and
``mmkd.RunInfoHook`` says what the run does (through ``tools/train.py``)."""
import os.path as osp

import pytest
from mmengine.config import Config

from helpers import CLS_CONFIG, ROOT, cls_options, run_tool
from mmkd.engine.hooks import accumulation_steps
from mmkd.utils import load_checkpoint

# the VanillaKD A1 / A2 student configs: the distillation configs inherit them
RECIPES = [
    'configs/cls/resnet50_a2_in1k.py', 'configs/cls/resnet50_a1_in1k.py',
    'configs/cls/vit-small-p16_a2_in1k.py',
    'configs/cls/convnextv2-tiny_a2_in1k.py', 'configs/cls/resnet18_a2_in1k.py'
]


def _cfg(tmp_path, batch_size: int) -> str:
    path = tmp_path / 'cfg.py'
    path.write_text(
        f"_base_ = '{CLS_CONFIG}'\n"
        'default_hooks = dict(effective_batch=dict('
        f"type='mmkd.EffectiveBatchHook', batch_size={batch_size}))\n")
    return str(path)


def test_one_process_accumulates_to_the_recipe_batch_and_says_so(
        demo_root, tmp_path):
    work = tmp_path / 'work'
    res = run_tool('train.py', _cfg(tmp_path, 8), '--work-dir', work,
                   '--cfg-options', *cls_options(demo_root, iters=4))
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-4000:]
    assert ('[mmkd] batch: 1 process(es) x 2 images x 4 accumulation '
            'step(s) = 8 images per optimizer step') in out
    demo = Config.fromfile(CLS_CONFIG)
    peak = demo.optim_wrapper.optimizer.lr
    first = peak * demo.param_scheduler[0].start_factor
    assert (f'[mmkd] lr: {peak:.6g} before the schedule (not auto-scaled); '
            f'{first:.6g} at the first iteration') in out
    with open(osp.join(demo_root, 'imagenet', 'meta', 'train.txt')) as f:
        images = sum(1 for line in f if line.strip())
    assert ('[mmkd] sampler: InfiniteSampler (shuffle=True): endless passes '
            f'over {images} samples, each process taking 1/1 of every '
            'pass') in out
    # 4 iterations of 2 images = one optimizer update of 8
    state = load_checkpoint(osp.join(work, 'iter_4.pth'))['optimizer']
    assert {int(s['step']) for s in state['state'].values()} == {1}


def test_auto_scale_lr_is_refused_where_the_batch_is_kept(
        demo_root, tmp_path):
    res = run_tool('train.py', _cfg(tmp_path, 8), '--work-dir',
                   tmp_path / 'work', '--auto-scale-lr', '--cfg-options',
                   *cls_options(demo_root, iters=4))
    out = res.stdout + res.stderr
    assert res.returncode != 0
    assert 'accumulating 4 steps' in out and 'drop --auto-scale-lr' in out


def test_accumulation_steps_and_errors():
    assert [accumulation_steps(2048, w, 256) for w in (1, 2, 8)] == [8, 4, 1]
    with pytest.raises(ValueError, match=r'batch_size=2048 is not a '
                       r'multiple of .* 3 x 256 = 768'):
        accumulation_steps(2048, 3, 256)


@pytest.mark.parametrize('name', RECIPES)
def test_recipes_keep_their_batch_on_1_2_and_8_processes(name):
    """The hook's batch is the one the recipe's lr is set for (its
    auto_scale_lr base), and 1, 2 and 8 processes of the configured batch
    reach it."""
    cfg = Config.fromfile(osp.join(ROOT, name))
    hook = cfg.default_hooks.effective_batch
    assert hook.type == 'mmkd.EffectiveBatchHook'
    assert hook.batch_size == cfg.auto_scale_lr.base_batch_size
    per_process = cfg.train_dataloader.batch_size
    for world in (1, 2, 8):
        steps = accumulation_steps(hook.batch_size, world, per_process)
        assert world * per_process * steps == hook.batch_size
