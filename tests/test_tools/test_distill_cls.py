"""Classification distillation through tools/train.py and tools/test.py;
the student export loads into plain timm."""
import os.path as osp
import subprocess
import sys

import torch

from helpers import ROOT, cls_options, run_tool

KD_DS_CONFIG = osp.join(ROOT,
                        'configs/demo/resnet18-w64-to-w8_kd-ds_demo-in1k.py')
TEACHER_CONFIG = osp.join(ROOT, 'configs/demo/resnet18-w64_demo-in1k.py')


def test_kd_ds_distillation_and_plain_timm_export(demo_root, tmp_path):
    from mmengine.config import Config
    from mmengine.registry import DefaultScope

    from mmkd.registry import MODELS
    with DefaultScope.overwrite_default_scope('mmkd'):
        teacher = MODELS.build(Config.fromfile(TEACHER_CONFIG).model)
    torch.save(dict(state_dict=teacher.state_dict()), tmp_path / 't.pth')
    work = tmp_path / 'kd'
    res = run_tool('train.py', KD_DS_CONFIG, '--work-dir', work,
                   '--cfg-options', *cls_options(demo_root, iters=3),
                   f'model.teacher_ckpt={tmp_path / "t.pth"}',
                   'default_hooks.checkpoint.interval=1',
                   'default_hooks.checkpoint.max_keep_ckpts=2')
    assert res.returncode == 0, res.stderr[-3000:]
    log = res.stdout + res.stderr
    for term in ('loss_cls', 'loss_kd', 'ds0.loss_kd', 'ds2.loss_kd',
                 'accuracy/top1'):
        assert term in log, term
    # student files follow the runner's max_keep_ckpts
    assert sorted(p.name for p in work.glob('*iter_*.pth')) == [
        'iter_2.pth', 'iter_3.pth', 'student_iter_2.pth',
        'student_iter_3.pth']

    # plain timm, no mmkd import: strict keys, same logits as mmkd's model
    code = f"""
import sys, timm, torch
state = torch.load({str(work / 'student_final.pth')!r}, map_location='cpu',
                   weights_only=True)['state_dict']
model = timm.create_model('resnet18', num_classes=6, stem_width=8,
                          channels=(8, 16, 32, 64))
model.load_state_dict(state, strict=True)
assert 'mmkd' not in sys.modules
torch.manual_seed(0)
x = torch.randn(2, 3, 56, 56)
torch.save(model.eval()(x), {str(tmp_path / 'logits.pth')!r})
print('OK')
"""
    out = subprocess.run([sys.executable, '-c', code], capture_output=True,
                         text=True, cwd=str(tmp_path))
    assert 'OK' in out.stdout, out.stderr[-3000:]
    from mmengine.runner import load_checkpoint
    with DefaultScope.overwrite_default_scope('mmkd'):
        student = MODELS.build(
            Config.fromfile(work / 'student_config.py').model)
    load_checkpoint(student, str(work / 'student_final.pth'), strict=True)
    torch.manual_seed(0)
    x = torch.randn(2, 3, 56, 56)
    assert torch.allclose(
        student.eval()(x, mode='tensor'), torch.load(tmp_path / 'logits.pth'))

    # the same file through tools/test.py and the plain student config
    res = run_tool('test.py', work / 'student_config.py',
                   work / 'student_final.pth', '--work-dir', tmp_path / 't',
                   '--cfg-options', *cls_options(demo_root))
    assert res.returncode == 0, res.stderr[-3000:]
    assert 'accuracy/top1' in res.stdout + res.stderr
