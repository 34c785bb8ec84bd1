"""CPU adaptation of configs and data-path checks before a run starts."""
import copy

import pytest
import torch
from mmengine.config import Config

from helpers import DET_CONFIG, SEG_CONFIG
from mmkd.utils import adapt_cfg_to_device, check_data_paths

no_cuda = pytest.mark.skipif(
    torch.cuda.is_available(), reason='checks the CPU-only conversion')


@no_cuda
def test_sync_bn_becomes_bn_on_cpu():
    cfg = Config.fromfile(SEG_CONFIG)
    assert cfg.model.backbone.norm_cfg.type == 'SyncBN'
    notes = adapt_cfg_to_device(cfg)
    assert cfg.model.backbone.norm_cfg.type == 'BN'
    assert cfg.model.decode_head.norm_cfg.type == 'BN'
    assert 'model.backbone.norm_cfg' in notes[0]


@no_cuda
def test_distributed_cpu_uses_gloo_without_device_ids():
    cfg = Config.fromfile(DET_CONFIG)
    adapt_cfg_to_device(cfg, launcher='pytorch')
    assert cfg.env_cfg.dist_cfg.backend == 'gloo'
    assert cfg.model_wrapper_cfg.device_ids is None


def test_missing_paths_name_key_and_path(demo_root, tmp_path):
    cfg = Config.fromfile(DET_CONFIG)
    coco = f'{demo_root}/coco/'
    for split in ('train', 'val', 'test'):
        cfg[f'{split}_dataloader'].dataset.data_root = coco
    for split in ('val', 'test'):
        cfg[f'{split}_evaluator'].ann_file = (
            coco + 'annotations/instances_val2017.json')
    check_data_paths(cfg)  # all present

    bad = copy.deepcopy(cfg)
    bad.train_dataloader.dataset.data_root = str(tmp_path / 'nowhere')
    with pytest.raises(FileNotFoundError,
                       match='train_dataloader.dataset.data_root.*nowhere'):
        check_data_paths(bad)

    bad = copy.deepcopy(cfg)
    bad.val_dataloader.dataset.ann_file = 'annotations/missing.json'
    with pytest.raises(FileNotFoundError,
                       match='val_dataloader.dataset.ann_file.*missing.json'):
        check_data_paths(bad)

    bad = copy.deepcopy(cfg)
    bad.test_dataloader.dataset.data_prefix.img = 'test2017/'
    with pytest.raises(FileNotFoundError, match='data_prefix.img.*test2017'):
        check_data_paths(bad)

    bad = copy.deepcopy(cfg)
    bad.test_evaluator.ann_file = coco + 'nothing.json'
    with pytest.raises(FileNotFoundError,
                       match='test_evaluator.ann_file.*nothing.json'):
        check_data_paths(bad)


def test_missing_checkpoint_stops_before_the_work_dir(demo_root, tmp_path,
                                                      monkeypatch):
    """tools/train.py: a missing teacher_ckpt / student_ckpt / load_from
    names the config key and the path, and nothing is written."""
    import importlib.util
    import os.path as osp
    import sys

    from helpers import ROOT, det_options
    spec = importlib.util.spec_from_file_location(
        'mmkd_train_tool', osp.join(ROOT, 'tools', 'train.py'))
    train = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(train)
    config = osp.join(
        ROOT, 'configs/demo/retinanet_r18-w32-to-w16_kd-ds_demo-coco.py')
    opts = [o.replace('model.test_cfg', 'model.student.test_cfg')
            for o in det_options(demo_root)]
    teacher = tmp_path / 'teacher.pth'  # present (only checked here)
    teacher.write_bytes(b'')
    monkeypatch.setenv('LOCAL_RANK', '0')
    for key in ('model.teacher_ckpt', 'model.student_ckpt', 'load_from'):
        work = tmp_path / key
        missing = str(tmp_path / f'{key}.pth')
        present = [] if key == 'model.teacher_ckpt' else [
            f'model.teacher_ckpt={teacher}']
        monkeypatch.setattr(sys, 'argv', [
            'train.py', config, '--work-dir', str(work), '--cfg-options',
            *opts, *present, f'{key}={missing}'
        ])
        with pytest.raises(SystemExit) as err:
            train.main()
        assert f'{key}: file "{missing}" does not exist' in str(err.value)
        assert not work.exists()
