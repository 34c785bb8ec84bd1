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
