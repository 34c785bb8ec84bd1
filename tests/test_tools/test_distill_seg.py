"""Segmentation distillation through tools/train.py; plain-mmseg export."""
import os.path as osp
import subprocess
import sys

import pytest
import torch

from helpers import ROOT, run_tool, seg_options
from helpers.seg_models import tiny_segmentor

KD_DS_CONFIG = osp.join(ROOT,
                        'configs/demo/fcn_r18-w32-to-w16_kd-ds_demo-ade.py')
TEACHER_CONFIG = osp.join(ROOT, 'configs/demo/fcn_r18-w32-d8_demo-ade.py')


def _build_and_save(model_cfg, path) -> str:
    from mmengine.registry import init_default_scope
    init_default_scope('mmseg')
    from mmseg.registry import MODELS
    torch.manual_seed(0)
    model = MODELS.build(model_cfg)
    torch.save(dict(state_dict=model.state_dict()), path)
    return str(path)


def test_kd_ds_distillation_and_plain_mmseg_export(demo_root, tmp_path):
    from mmengine.config import Config

    from mmkd.utils import adapt_cfg_to_device
    cfg = Config.fromfile(TEACHER_CONFIG)
    adapt_cfg_to_device(cfg)
    teacher = _build_and_save(cfg.model, tmp_path / 'teacher.pth')
    work = tmp_path / 'kd'
    res = run_tool('train.py', KD_DS_CONFIG, '--work-dir', work,
                   '--cfg-options', *seg_options(demo_root),
                   f'model.teacher_ckpt={teacher}')
    assert res.returncode == 0, res.stderr[-3000:]
    log = res.stdout + res.stderr
    for term in ('decode.loss_ce', 'decode.loss_kd', 'aux.loss_kd',
                 'ds0.loss_kd', 'ds1.loss_kd'):
        assert term in log, term
    assert 'ds0.loss_ce' not in log  # light heads: KD only

    img_dir = osp.join(demo_root, 'ade', 'images', 'validation')
    code = f"""
import os, sys, torch
from mmseg.apis import inference_model, init_model
ckpt = {str(work / 'student_final.pth')!r}
model = init_model({str(work / 'student_config.py')!r}, ckpt, device='cpu')
state = torch.load(ckpt, map_location='cpu', weights_only=True)['state_dict']
assert set(state) == set(model.state_dict()), set(state) ^ set(model.state_dict())
assert not any(k.startswith(('teacher', 'ds_', 'student.')) for k in state)
for k, v in state.items():
    assert torch.equal(model.state_dict()[k], v), k
img = os.path.join({img_dir!r}, sorted(os.listdir({img_dir!r}))[0])
result = inference_model(model, img)
assert 'mmkd' not in sys.modules
print('OK', tuple(result.pred_sem_seg.data.shape), model.dataset_meta['classes'][1])
"""
    out = subprocess.run([sys.executable, '-c', code], cwd=str(tmp_path),
                         capture_output=True, text=True, timeout=300,
                         env={'PATH': '/usr/bin:/bin',
                              'OMP_NUM_THREADS': '1'})
    assert out.returncode == 0, out.stderr[-3000:]
    assert 'OK (1, 128, 128) circle' in out.stdout


@pytest.mark.parametrize('teacher_kind', ['pspnet', 'segformer'])
def test_two_iterations_pspnet_student(teacher_kind, demo_root, tmp_path):
    student = tiny_segmentor('pspnet', 8).to_dict()
    teacher = tiny_segmentor(teacher_kind, 16).to_dict()
    ckpt = _build_and_save(teacher, tmp_path / 'teacher.pth')
    cfg = tmp_path / 'distill.py'
    cfg.write_text(
        f"_base_ = '{KD_DS_CONFIG}'\n"
        "model = dict(_delete_=True, type='mmkd.SegmentationDistiller',\n"
        f"    student={student!r},\n    teacher={teacher!r},\n"
        f"    teacher_ckpt={ckpt!r},\n"
        "    distill=dict(logits=dict(type='mmkd.ChannelWiseDivergence',\n"
        "                             loss_weight=3.0)),\n"
        "    deep_supervision=dict(stages=[2]))\n")
    res = run_tool('train.py', cfg, '--work-dir', tmp_path / 'work',
                   '--cfg-options', *seg_options(demo_root),
                   'model.student.data_preprocessor.size=[128,128]',
                   'model.teacher.data_preprocessor.size=[128,128]')
    assert res.returncode == 0, res.stderr[-3000:]
    log = res.stdout + res.stderr
    assert 'decode.loss_kd' in log and 'ds0.loss_kd' in log
