"""tools/demo.py's pictures: predictions of teacher / baseline / distilled
side by side (mmdet's and mmseg's visualizers) and the summary bars."""
import argparse
import importlib.util
import os.path as osp

import pytest
import torch
from mmengine.config import Config, DictAction

from helpers import DET_CONFIG, ROOT, SEG_CONFIG, det_options, seg_options


def _demo():
    spec = importlib.util.spec_from_file_location(
        'mmkd_demo_tool', osp.join(ROOT, 'tools', 'demo.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _model_files(config, options, tmp_path, name):
    """A config with ``options`` applied and a checkpoint of its model
    (random weights, the dataset's classes in ``meta``)."""
    from mmengine.registry import MODELS, DefaultScope
    parser = argparse.ArgumentParser()
    parser.add_argument('--o', nargs='+', action=DictAction)
    cfg = Config.fromfile(config)
    cfg.merge_from_dict(parser.parse_args(['--o', *options]).o)
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        model = MODELS.build(cfg.model)
    path = str(tmp_path / f'{name}.py')
    cfg.dump(path)
    meta = dict(dataset_meta=dict(cfg.test_dataloader.dataset.metainfo))
    torch.save(dict(state_dict=model.state_dict(), meta=meta),
               tmp_path / f'{name}.pth')
    return path, str(tmp_path / f'{name}.pth')


@pytest.mark.parametrize('task,config,options',
                         [('detection', DET_CONFIG, det_options),
                          ('segmentation', SEG_CONFIG, seg_options)])
def test_prediction_picture(task, config, options, demo_root, tmp_path):
    from PIL import Image
    files = {name: _model_files(config, options(demo_root), tmp_path, name)
             for name in ('teacher', 'baseline', 'distilled')}
    study = dict(
        teacher=dict(config=files['teacher'][0],
                     checkpoint=files['teacher'][1]),
        runs=[dict(arm=arm, seed=0, fraction=1.0, config=files[name][0],
                   checkpoint=files[name][1])
              for arm, name in (('baseline', 'baseline'),
                                ('kd-ds', 'distilled'))])
    out = str(tmp_path / 'predictions.png')
    _demo().predictions_png(task, study, 'kd-ds', 0, 2, out)
    with Image.open(out) as img:
        # 2 images x (ground truth, teacher, baseline, distilled)
        assert img.width > 1.5 * img.height
        assert len(img.convert('RGB').getcolors(1 << 20) or []) > 1000


def test_summary_picture(tmp_path):
    from PIL import Image

    from mmkd.study import summarize
    runs = [dict(arm=a, seed=s, fraction=1.0, value=v)
            for a, s, v in [('baseline', 0, 0.1), ('baseline', 1, 0.12),
                            ('kd-ds', 0, 0.13), ('kd-ds', 1, 0.15)]]
    study = dict(metric='coco/bbox_mAP', teacher=dict(value=0.2),
                 summary=summarize(runs, ['baseline', 'kd-ds'], [1.0]))
    demo = _demo()
    assert demo.summary_line(study) == (
        'teacher 0.2, baseline 0.11, kd-ds 0.14 (+0.03) coco/bbox_mAP '
        '(mean of 2 seeds)')
    out = str(tmp_path / 'summary.png')
    demo.summary_png(dict(detection=study, segmentation=study), out)
    with Image.open(out) as img:
        assert img.width > 1.5 * img.height and img.height > 300
