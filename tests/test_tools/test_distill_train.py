"""Distillation through tools/train.py on the demo data, export, resume."""
import os.path as osp
import subprocess
import sys

import pytest
import torch

from helpers import ROOT, det_options, run_tool
from helpers.det_models import tiny_detector

KD_DS_CONFIG = osp.join(
    ROOT, 'configs/demo/retinanet_r18-w32-to-w16_kd-ds_demo-coco.py')
TEACHER_CONFIG = osp.join(ROOT,
                          'configs/demo/retinanet_r18-w32_fpn_demo-coco.py')


@pytest.fixture(scope='module')
def demo_teacher(tmp_path_factory) -> str:
    """The demo teacher, built (not trained) and saved as a checkpoint."""
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')
    from mmdet.registry import MODELS
    torch.manual_seed(0)
    teacher = MODELS.build(Config.fromfile(TEACHER_CONFIG).model)
    path = str(tmp_path_factory.mktemp('teacher') / 'teacher.pth')
    torch.save(dict(state_dict=teacher.state_dict(), meta={}), path)
    return path


def _distill_options(root, teacher, iters=2):
    opts = [
        o.replace('model.test_cfg', 'model.student.test_cfg')
        for o in det_options(root, iters)
    ]
    return opts + [f'model.teacher_ckpt={teacher}']


def test_kd_ds_distillation_and_plain_mmdet_export(demo_root, demo_teacher,
                                                   tmp_path):
    work = tmp_path / 'kd'
    res = run_tool('train.py', KD_DS_CONFIG, '--work-dir', work,
                   '--cfg-options', *_distill_options(demo_root,
                                                      demo_teacher))
    assert res.returncode == 0, res.stderr[-3000:]
    log = res.stdout + res.stderr
    for term in ('loss_cls', 'loss_bbox', 'loss_kd_cls_l0', 'loss_kd_cls_l4',
                 'ds0.loss_cls', 'ds1.loss_bbox', 'ds1.loss_kd_cls_l2'):
        assert term in log, term
    for name in ('iter_2.pth', 'student_iter_2.pth', 'student_final.pth',
                 'student_config.py'):
        assert (work / name).is_file(), name

    # plain mmdet, no mmkd import, strict key match, inference runs
    img = osp.join(demo_root, 'coco', 'val2017')
    code = f"""
import os, sys, torch
from mmdet.apis import inference_detector, init_detector
ckpt = {str(work / 'student_final.pth')!r}
model = init_detector({str(work / 'student_config.py')!r}, ckpt, device='cpu')
state = torch.load(ckpt, map_location='cpu', weights_only=True)['state_dict']
assert set(state) == set(model.state_dict()), set(state) ^ set(model.state_dict())
assert not any(k.startswith(('teacher', 'ds_', 'student.')) for k in state)
for k, v in state.items():
    assert torch.equal(model.state_dict()[k], v), k
img = os.path.join({img!r}, sorted(os.listdir({img!r}))[0])
result = inference_detector(model, img)
assert 'mmkd' not in sys.modules
print('OK', len(result.pred_instances), model.dataset_meta['classes'][0])
"""
    out = subprocess.run([sys.executable, '-c', code], cwd=str(tmp_path),
                         capture_output=True, text=True, timeout=300,
                         env={'PATH': '/usr/bin:/bin',
                              'OMP_NUM_THREADS': '1'})
    assert out.returncode == 0, out.stderr[-3000:]
    assert 'OK' in out.stdout and 'circle' in out.stdout


def _write_config(tmp_path, kind: str, teacher_ckpt: str) -> str:
    """A distillation config for a tiny ``kind`` detector on the demo data."""
    distill = {
        'fcos': "dict(cls=dict(type='mmkd.SigmoidKDLoss'))",
        'gfl': "dict(cls=dict(type='mmkd.SigmoidKDLoss'), "
               "box=dict(type='mmkd.KDLoss', loss_weight=0.25))",
        'faster_rcnn': "dict(cls=dict(type='mmkd.KDLoss'))",
    }[kind]
    path = tmp_path / f'{kind}_distill.py'
    path.write_text(
        f"_base_ = '{KD_DS_CONFIG}'\n"
        f"model = dict(_delete_=True, type='mmkd.DetectionDistiller',\n"
        f"    student={tiny_detector(kind, 8).to_dict()!r},\n"
        f"    teacher={tiny_detector(kind, 16).to_dict()!r},\n"
        f"    teacher_ckpt={teacher_ckpt!r}, distill={distill},\n"
        f"    deep_supervision=dict(stages=[2]))\n")
    return str(path)


@pytest.mark.parametrize('kind', ['fcos', 'gfl', 'faster_rcnn'])
def test_two_iterations_for_each_detector(kind, demo_root, tmp_path):
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')
    from mmdet.registry import MODELS
    teacher = MODELS.build(tiny_detector(kind, 16))
    ckpt = str(tmp_path / 'teacher.pth')
    torch.save(dict(state_dict=teacher.state_dict()), ckpt)
    cfg = _write_config(tmp_path, kind, ckpt)
    res = run_tool('train.py', cfg, '--work-dir', tmp_path / 'work',
                   '--cfg-options', *_distill_options(demo_root, ckpt))
    assert res.returncode == 0, res.stderr[-3000:]
    log = res.stdout + res.stderr
    assert ('loss_kd_cls_roi' if kind == 'faster_rcnn' else
            'loss_kd_cls_l0') in log
    assert 'ds0.loss_kd_cls' in log
    if kind == 'gfl':
        assert 'loss_kd_box_l0' in log


def test_resume_equals_uninterrupted(demo_root, demo_teacher, tmp_path):
    # no random flip: the data order is the only randomness, and the runner
    # skips the consumed batches on resume
    opts = ['train_dataloader.dataset.pipeline.3.prob=0.0']
    full, part = tmp_path / 'full', tmp_path / 'part'
    res = run_tool('train.py', KD_DS_CONFIG, '--work-dir', full,
                   '--cfg-options',
                   *_distill_options(demo_root, demo_teacher, 4), *opts)
    assert res.returncode == 0, res.stderr[-3000:]
    res = run_tool('train.py', KD_DS_CONFIG, '--work-dir', part,
                   '--cfg-options',
                   *_distill_options(demo_root, demo_teacher, 2), *opts)
    assert res.returncode == 0, res.stderr[-3000:]
    res = run_tool('train.py', KD_DS_CONFIG, '--work-dir', part, '--resume',
                   '--cfg-options',
                   *_distill_options(demo_root, demo_teacher, 4), *opts)
    assert res.returncode == 0, res.stderr[-3000:]
    from mmkd.utils import load_checkpoint
    a = load_checkpoint(str(full / 'iter_4.pth'))['state_dict']
    b = load_checkpoint(str(part / 'iter_4.pth'))['state_dict']
    assert a.keys() == b.keys()
    assert any(k.startswith('ds_branches') for k in a)
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0, msg=k)


YOLOX_CONFIG = osp.join(ROOT,
                        'configs/demo/yolox_w16-to-w8_kd-ds_3e_demo-coco.py')


def test_yolox_recipe_crosses_its_mode_switch(demo_root, tmp_path):
    """mmdet's YOLOX recipe (mosaic / mixup, BatchSyncRandomResize,
    YOLOXModeSwitchHook, SyncNormHook, EMA) through tools/train.py with the
    distiller: 3 short epochs, the switch in the last one turns on the L1
    box loss of the student's head and of the auxiliary heads."""
    coco = osp.join(demo_root, 'coco') + '/'
    ann = f'{coco}annotations/instances_val2017.json'
    work = tmp_path / 'yolox'
    res = run_tool(
        'train.py', YOLOX_CONFIG, '--work-dir', work, '--cfg-options',
        f'train_dataloader.dataset.dataset.data_root={coco}',
        f'val_dataloader.dataset.data_root={coco}',
        f'test_dataloader.dataset.data_root={coco}',
        f'val_evaluator.ann_file={ann}', f'test_evaluator.ann_file={ann}')
    assert res.returncode == 0, res.stderr[-3000:]
    log = res.stdout + res.stderr
    switch = log.index('Add additional L1 loss now!')
    assert 'No mosaic and mixup aug now!' in log
    # the iteration log lines, before and after the switch
    before, after = ('\n'.join(ln for ln in part.splitlines()
                               if 'Epoch(train)' in ln)
                     for part in (log[:switch], log[switch:]))
    for term in ('loss_cls', 'loss_obj', 'loss_kd_cls_l0', 'ds0.loss_obj',
                 'ds1.loss_kd_cls_l2'):
        assert term in before and term in after, term
    assert 'loss_l1' not in before
    assert 'loss_l1' in after and 'ds0.loss_l1' in after
    assert (work / 'student_final.pth').is_file()


STUDENT_CONFIG = osp.join(ROOT,
                          'configs/demo/retinanet_r18-w16_fpn_demo-coco.py')


def _first_losses(log: str) -> dict:
    """The values of the first iteration's log line, by key."""
    import re
    line = next(ln for ln in log.splitlines() if 'Iter(train) [1/' in ln)
    return dict(re.findall(r'(\S+): (-?[0-9.]+(?:e-?\d+)?)', line))


def test_paired_arms_baseline_and_kd_ds_start_alike(demo_root, demo_teacher,
                                                    tmp_path):
    """Same seed: the distiller's student starts from the plain student's
    weights and sees the same first batch, so its task losses at
    iteration 1 equal the baseline's (building the teacher and the
    auxiliary heads does not shift the student's random stream)."""
    seed = ['randomness.seed=7']
    base = run_tool('train.py', STUDENT_CONFIG, '--work-dir',
                    tmp_path / 'base', '--cfg-options',
                    *det_options(demo_root, 1), *seed)
    assert base.returncode == 0, base.stderr[-3000:]
    kd = run_tool('train.py', KD_DS_CONFIG, '--work-dir', tmp_path / 'kd',
                  '--cfg-options',
                  *_distill_options(demo_root, demo_teacher, 1), *seed)
    assert kd.returncode == 0, kd.stderr[-3000:]
    a = _first_losses(base.stdout + base.stderr)
    b = _first_losses(kd.stdout + kd.stderr)
    for key in ('loss_cls', 'loss_bbox'):
        assert a[key] == b[key], (key, a[key], b[key])
    assert 'loss_kd_cls_l0' in b and 'ds0.loss_cls' in b
