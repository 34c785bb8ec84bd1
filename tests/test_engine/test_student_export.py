"""StudentCheckpointHook: EMA weights in every export (and said so), and an
exported config that builds a student using mmkd modules."""
import os.path as osp
import subprocess
import sys

import torch
from mmengine.config import Config
from mmengine.hooks import EMAHook
from mmengine.registry import DefaultScope
from mmengine.runner import Runner
from mmengine.structures import BaseDataElement

import mmkd  # noqa: F401
from helpers import ROOT, det_options
from helpers.cls_models import tiny_classifier
from mmkd.engine.hooks import StudentCheckpointHook
from mmkd.engine.hooks.student_checkpoint_hook import (student_config,
                                                       student_state)
from mmkd.models import TimmClassifier
from mmkd.registry import MODELS

KD_DS_CONFIG = osp.join(
    ROOT, 'configs/demo/retinanet_r18-w32-to-w16_kd-ds_demo-coco.py')


class ToyImages(torch.utils.data.Dataset):
    metainfo = dict(classes=tuple('abcdef'))

    def __len__(self):
        return 8

    def __getitem__(self, i):
        g = torch.Generator().manual_seed(i)
        return dict(
            inputs=torch.randint(0, 256, (3, 32, 32), dtype=torch.uint8,
                                 generator=g),
            data_samples=BaseDataElement(gt_label=torch.tensor([i % 6])))


def _run(work_dir, hooks, iters=4):
    model_cfg = dict(type='ClassificationDistiller',
                     student=tiny_classifier(width=4),
                     teacher=tiny_classifier(width=8))
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('mmkd'):
        model = MODELS.build(model_cfg)
    runner = Runner(
        model=model,
        work_dir=str(work_dir),
        train_dataloader=dict(
            dataset=ToyImages(),
            sampler=dict(type='DefaultSampler', shuffle=False),
            batch_size=4, num_workers=0),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.5)),
        train_cfg=dict(by_epoch=False, max_iters=iters),
        default_hooks=dict(checkpoint=dict(
            type='CheckpointHook', by_epoch=False, interval=2)),
        custom_hooks=hooks,
        randomness=dict(seed=0),
        log_level='WARNING',
        cfg=dict(model=model_cfg, default_scope='mmkd'))
    runner.train()
    return runner


def _load(path):
    return torch.load(path, map_location='cpu', weights_only=True)


def _equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_ema_export_is_consistent_and_labelled(tmp_path):
    ema = EMAHook(momentum=0.5)
    runner = _run(tmp_path / 'ema', [ema, StudentCheckpointHook()])
    files = {n: _load(tmp_path / 'ema' / f'{n}.pth')
             for n in ('student_iter_2', 'student_iter_4', 'student_final')}
    assert all(f['meta']['weights'] == 'ema' for f in files.values())
    ema_student = TimmClassifier.plain_state_dict(
        student_state(ema.ema_model.module.state_dict()))
    live_student = TimmClassifier.plain_state_dict(
        student_state(runner.model.state_dict()))
    final = files['student_final']['state_dict']
    # the last periodic file and the final one hold the same (EMA) weights
    assert _equal(final, files['student_iter_4']['state_dict'])
    assert _equal(final, ema_student)
    assert not _equal(final, live_student)
    # the EMA copy of the distiller shares the one teacher
    assert ema.ema_model.module.teacher is runner.model.teacher

    runner = _run(tmp_path / 'live', [StudentCheckpointHook()], iters=2)
    final = _load(tmp_path / 'live' / 'student_final.pth')
    assert final['meta']['weights'] == 'live'
    assert _equal(final['state_dict'], TimmClassifier.plain_state_dict(
        student_state(runner.model.state_dict())))


def test_exported_config_keeps_only_the_imports_it_needs():
    cfg = Config.fromfile(KD_DS_CONFIG)
    cfg.custom_imports = dict(imports=['mmkd', 'json'],
                              allow_failed_imports=False)
    out = student_config(cfg)  # a plain mmdet student: no mmkd
    assert out.custom_imports == dict(imports=['json'],
                                      allow_failed_imports=False)
    cfg.custom_imports = dict(imports=['mmkd'], allow_failed_imports=False)
    assert 'custom_imports' not in student_config(cfg)
    cfg.model.student.backbone = dict(type='mmkd.TimmBackbone',
                                      model_name='test_resnet')
    assert student_config(cfg).custom_imports == cfg.custom_imports


def test_timm_backbone_student_export_builds_and_tests(demo_root, tmp_path):
    cfg = Config.fromfile(KD_DS_CONFIG)
    cfg.model.student.backbone = dict(
        type='mmkd.TimmBackbone', model_name='test_resnet',
        out_indices=(1, 2, 3, 4))
    cfg.model.student.neck.in_channels = [32, 48, 192, 96]
    path = str(tmp_path / 'student_config.py')
    student_config(cfg).dump(path)
    exported = Config.fromfile(path)
    with DefaultScope.overwrite_default_scope('mmdet'):
        from mmdet.registry import MODELS as DET_MODELS
        student = DET_MODELS.build(exported.model)
    ckpt = str(tmp_path / 'student_final.pth')
    torch.save(dict(state_dict=student.state_dict(),
                    meta=dict(distilled_with='mmkd')), ckpt)

    # plain mmdet builds it (mmkd comes in through the config's
    # custom_imports only) and loads the weights strictly; then mmkd's
    # tools/test.py evaluates it (in the same process, to start one)
    img = osp.join(demo_root, 'coco', 'val2017')
    test_args = [path, ckpt, '--work-dir', str(tmp_path / 'test'),
                 '--cfg-options', *det_options(demo_root)]
    code = f"""
import os, runpy, sys, torch
from mmdet.apis import inference_detector, init_detector
assert 'mmkd' not in sys.modules
model = init_detector({path!r}, {ckpt!r}, device='cpu')
state = torch.load({ckpt!r}, map_location='cpu', weights_only=True)
for k, v in state['state_dict'].items():
    assert torch.equal(model.state_dict()[k], v), k
assert type(model.backbone).__name__ == 'TimmBackbone'
img = os.path.join({img!r}, sorted(os.listdir({img!r}))[0])
inference_detector(model, img)
print('PLAIN OK')
sys.argv = ['test.py'] + {test_args!r}
runpy.run_path({osp.join(ROOT, 'tools', 'test.py')!r}, run_name='__main__')
"""
    out = subprocess.run([sys.executable, '-c', code], cwd=str(tmp_path),
                         capture_output=True, text=True, timeout=300,
                         env={'PATH': '/usr/bin:/bin', 'PYTHONPATH': ROOT,
                              'OMP_NUM_THREADS': '1'})
    assert out.returncode == 0, out.stderr[-3000:]
    assert 'PLAIN OK' in out.stdout
    assert 'coco/bbox_mAP' in out.stdout + out.stderr
