"""tools/analysis_tools/kd_study.py: a 2-arm, 2-seed study of tiny timm
classifiers on the generated demo data; the arms' configs; train-fraction
subsets."""
import json
import math
import os.path as osp

import numpy as np
import pytest

from helpers import ROOT, cls_options, run_tool

DEMO = osp.join(ROOT, 'configs/demo')
TEACHER = osp.join(DEMO, 'resnet18-w64_demo-in1k.py')
STUDENT = osp.join(DEMO, 'resnet18-w8_demo-in1k.py')
KD_DS = osp.join(DEMO, 'resnet18-w64-to-w8_kd-ds_demo-in1k.py')
KD_ONLY = osp.join(DEMO, 'resnet18-w64-to-w8_kd_demo-in1k.py')
SEG_KD_DS = osp.join(DEMO, 'fcn_r18-w32-to-w16_kd-ds_demo-ade.py')
DET_KD_DS = osp.join(DEMO, 'retinanet_r18-w32-to-w16_kd-ds_demo-coco.py')


def _study(demo_root, work):
    return run_tool('analysis_tools/kd_study.py', '--teacher', TEACHER,
                    '--student', STUDENT, '--distill', KD_DS, '--seeds', 0,
                    1, '--arms', 'baseline', 'kd', '--work-dir', work,
                    '--cfg-options', *cls_options(demo_root, iters=2))


def _mtimes(work):
    import glob
    return {p: osp.getmtime(p)
            for p in glob.glob(osp.join(work, '**', '*'), recursive=True)
            if osp.isfile(p) and not p.endswith(('study.json', 'study.md',
                                                 'study.png'))}


def test_two_arm_two_seed_study(demo_root, tmp_path):
    from mmengine.config import Config
    from PIL import Image

    work = str(tmp_path / 'study')
    res = _study(demo_root, work)
    assert res.returncode == 0, (res.stdout + res.stderr)[-3000:]
    out = res.stdout

    with open(osp.join(work, 'study.json')) as f:
        study = json.load(f)
    assert study['metric'] == 'accuracy/top1'
    runs = study['runs']
    assert sorted((r['arm'], r['seed']) for r in runs) == [
        ('baseline', 0), ('baseline', 1), ('kd', 0), ('kd', 1)]
    for r in runs:
        assert math.isfinite(r['value'])
        assert r['value'] == r['metrics']['accuracy/top1']
        cfg = Config.fromfile(osp.join(r['dir'], 'config.py'))
        assert cfg.randomness.seed == r['seed']
        assert cfg.train_cfg.val_interval == cfg.train_cfg.max_iters
        if r['arm'] == 'kd':
            assert cfg.model.deep_supervision is None
            assert cfg.model.teacher_ckpt == study['teacher']['checkpoint']
            # the distilled student is recorded as its student-only export
            assert r['checkpoint'].endswith('student_final.pth')
            assert osp.isfile(r['checkpoint'])
    teacher = study['teacher']
    assert math.isfinite(teacher['value']) and teacher['trained']

    # the table (file and console): mean ± sample std per arm, the gain
    with open(osp.join(work, 'study.md')) as f:
        table = f.read()
    assert '| train fraction | arm | seeds | accuracy/top1 (mean ± std) |' \
        in table
    values = {arm: [r['value'] for r in runs if r['arm'] == arm]
              for arm in ('baseline', 'kd')}
    for arm, v in values.items():
        cell = f'{np.mean(v):.2f} ± {np.std(v, ddof=1):.2f}'
        assert f'| 1 | {arm} | 2 | {cell} |' in table, (cell, table)
    # paired by seed: the mean of the per-seed differences, its standard
    # error, and the wins
    by_seed = {(r['arm'], r['seed']): r['value'] for r in runs}
    diffs = [by_seed['kd', s] - by_seed['baseline', s] for s in (0, 1)]
    gain, se = np.mean(diffs), np.std(diffs, ddof=1) / math.sqrt(2)
    wins = sum(d > 0 for d in diffs)
    assert f'{gain:+.2f} ± {se:.2f} | {wins} of 2 |' in table, table
    kd_row = next(r for r in study['summary'] if r['arm'] == 'kd')
    assert kd_row['wins'] == wins and kd_row['pairs'] == 2
    assert f'teacher: {teacher["value"]:.2f} accuracy/top1' in table
    assert table.splitlines()[2] in out

    png = osp.join(work, 'study.png')
    assert osp.getsize(png) > 10_000
    with Image.open(png) as img:
        assert img.width > 300 and img.height > 200
        assert len(img.convert('RGB').getcolors(1 << 16) or []) > 20

    # the teacher was trained once: one cache entry, one training command,
    # and a stable name for its checkpoint (what the demo configs name)
    teachers = osp.join(work, 'teachers')
    import os
    entry, alias = sorted(os.listdir(teachers))
    assert entry.startswith('resnet18-w64_demo-in1k-')
    assert alias == 'resnet18-w64_demo-in1k.pth'
    assert osp.samefile(osp.join(teachers, alias), teacher['checkpoint'])
    with open(osp.join(teachers, entry, 'train.log')) as f:
        assert sum(line.startswith('$ ') for line in f) == 1

    # a second invocation repeats nothing and writes the same study
    before = _mtimes(work)
    res = _study(demo_root, work)
    assert res.returncode == 0, (res.stdout + res.stderr)[-3000:]
    assert res.stdout.count('done before') == 4, res.stdout
    assert 'cached' in res.stdout
    assert _mtimes(work) == before
    with open(osp.join(work, 'study.json')) as f:
        again = json.load(f)
    assert [r['value'] for r in again['runs']] == [r['value'] for r in runs]


def test_arm_configs():
    from mmkd.study.configs import StudyError, arm_config, load_config
    student = load_config(STUDENT)
    # segmentation: ds has no teacher term at all
    seg = load_config(SEG_KD_DS)
    ds = arm_config('ds', student, seg, '/t.pth', SEG_KD_DS)
    assert ds.model.distill == {}
    assert ds.model.distill_aux_head is False
    assert ds.model.deep_supervision.kd_weight == 0
    assert ds.model.deep_supervision.gt_weight == 1
    assert ds.model.deep_supervision.stages == [1, 2]
    kd = arm_config('kd', student, seg, '/t.pth', SEG_KD_DS)
    assert kd.model.deep_supervision is None and kd.model.distill.logits
    both = arm_config('kd-ds', student, seg, '/t.pth', SEG_KD_DS)
    assert both.model.teacher_ckpt == '/t.pth'
    assert both.model.distill == seg.model.distill
    assert any('StudentCheckpointHook' in h.type for h in both.custom_hooks)
    # detection: no distill_aux_head option there
    det = arm_config('ds', student, load_config(DET_KD_DS), '/t.pth')
    assert det.model.distill == {} and 'distill_aux_head' not in det.model
    assert arm_config('baseline', student, seg, '/t.pth').model == \
        student.model
    with pytest.raises(StudyError, match='kd_demo-in1k.py has no '
                       'model.deep_supervision'):
        arm_config('ds', student, load_config(KD_ONLY), '/t.pth', KD_ONLY)
    with pytest.raises(StudyError, match='not an mmkd distiller'):
        arm_config('kd', student, student, '/t.pth', STUDENT)


def test_train_fraction_subsets(demo_root):
    from mmkd.study.configs import (StudyError, load_config, pick_metric,
                                    subset_indices, with_fraction)
    half = subset_indices(100, 0.5, study_seed=0)
    quarter = subset_indices(100, 0.25, study_seed=0)
    assert len(half) == 50 and len(quarter) == 25
    assert set(quarter) <= set(half)  # nested
    assert half == sorted(set(half)) == subset_indices(100, 0.5, 0)
    assert subset_indices(100, 0.5, study_seed=1) != half
    with pytest.raises(StudyError, match='train fraction 1.5'):
        subset_indices(100, 1.5, 0)

    options = dict(o.split('=', 1) for o in cls_options(demo_root))
    cfg = load_config(STUDENT, {k: v for k, v in options.items()
                                if k.endswith('data_root')})
    lengths = {}
    with_fraction(cfg, 0.5, 0, lengths)
    (n, ) = lengths.values()
    assert cfg.train_dataloader.dataset.indices == subset_indices(n, 0.5, 0)

    assert pick_metric({'mIoU': 1.0, 'aAcc': 2.0}) == 'mIoU'
    with pytest.raises(StudyError, match="'aAcc'"):
        pick_metric({'aAcc': 2.0})
    with pytest.raises(StudyError, match='--metric top5'):
        pick_metric({'accuracy/top1': 2.0}, 'top5')


def test_ds_arm_trains_without_the_teacher():
    import torch
    from mmengine.registry import DefaultScope
    from mmengine.structures import BaseDataElement

    from mmkd.registry import MODELS
    from mmkd.study.configs import arm_config, load_config
    cfg = arm_config('ds', load_config(STUDENT), load_config(KD_DS), None)
    with DefaultScope.overwrite_default_scope('mmkd'):
        model = MODELS.build(cfg.model)
    ran = []
    model.teacher.register_forward_hook(lambda *args: ran.append(1))
    torch.manual_seed(0)
    data = model.data_preprocessor(dict(
        inputs=[torch.randint(0, 256, (3, 56, 56), dtype=torch.uint8)
                for _ in range(2)],
        data_samples=[BaseDataElement(gt_label=torch.tensor([i]))
                      for i in range(2)]), training=True)
    losses = model(**data, mode='loss')
    assert {'loss_cls', 'ds0.loss_cls', 'ds2.loss_cls'} <= set(losses)
    assert not [k for k in losses if 'kd' in k] and not ran


def test_extra_arms_and_the_data_fraction_panel(tmp_path):
    """Named variants of the distillation config (the small-data pitfall's
    arms), and study.png's score-vs-fraction panel."""
    import importlib.util

    from mmkd.study.configs import StudyError, arm_config, check_arms
    from mmkd.study.configs import load_config
    from mmkd.study.report import plot, summarize
    spec = importlib.util.spec_from_file_location(
        'kd_study', osp.join(ROOT, 'tools/analysis_tools/kd_study.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    extra = tool.parse_extra_arms([
        ['dkd', 'model.distill.logits.type=mmkd.DKDLoss',
         'model.deep_supervision=None'],
        ['dkd-ds', 'model.distill.logits.type=mmkd.DKDLoss']])
    assert extra['dkd']['model.deep_supervision'] is None
    student = load_config(STUDENT)
    dkd = arm_config('dkd', student, load_config(KD_DS), '/t.pth', KD_DS,
                     extra)
    assert dkd.model.distill.logits.type == 'mmkd.DKDLoss'
    assert dkd.model.deep_supervision is None
    assert dkd.model.teacher_ckpt == '/t.pth'
    both = arm_config('dkd-ds', student, load_config(KD_DS), '/t.pth',
                      KD_DS, extra)
    assert both.model.deep_supervision.stages
    with pytest.raises(StudyError, match='built-in arm name'):
        check_arms(['baseline'], ['kd'])
    with pytest.raises(StudyError, match=r"unknown \['dist'\]"):
        check_arms(['baseline', 'dist'], ['dkd'])
    with pytest.raises(StudyError, match='KEY=VALUE'):
        tool.parse_extra_arms([['dkd']])

    runs = [dict(arm=a, seed=s, fraction=f, value=v + s * 0.01)
            for f, scale in ((0.25, 0.5), (0.5, 0.7), (1.0, 1.0))
            for a, v in (('baseline', 0.4 * scale), ('kd', 0.45 * scale),
                         ('dkd', 0.5 * scale)) for s in (0, 1, 2)]
    rows = summarize(runs, ['baseline', 'kd', 'dkd'], [0.25, 0.5, 1.0])
    dkd_row = next(r for r in rows if r['arm'] == 'dkd' and
                   r['fraction'] == 0.25)
    assert dkd_row['wins'] == 3 and dkd_row['gain'] == pytest.approx(0.05)
    assert dkd_row['gain_se'] == pytest.approx(0.0, abs=1e-12)
    path = str(tmp_path / 'study.png')
    plot(rows, 'accuracy/top1', 0.6, path)
    from PIL import Image
    with Image.open(path) as img:  # 3 fraction panels + score vs data
        assert img.width > 4 * 280


def test_demo_distill_configs_name_the_demos_teacher_alias():
    """After `bash tools/demo.sh`, tools/train.py on a demo distillation
    config finds the teacher the demo trained (its stable alias)."""
    import importlib.util

    from mmengine.config import Config
    spec = importlib.util.spec_from_file_location(
        'demo', osp.join(ROOT, 'tools/demo.py'))
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    for task in demo.TASKS.values():
        name = osp.splitext(task['teacher'])[0]
        cfg = Config.fromfile(osp.join(DEMO, task['distill']))
        assert cfg.model.teacher_ckpt == \
            f'work_dirs/demo/teachers/{name}.pth', task['distill']
