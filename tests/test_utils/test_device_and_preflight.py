"""CPU adaptation of configs, data-path and checkpoint checks before a run
starts."""
import copy
import os.path as osp
import sys

import pytest
import torch
from mmengine.config import Config

from helpers import DET_CONFIG, ROOT, SEG_CONFIG, det_options
from mmkd.utils import (CorruptCheckpointError, adapt_cfg_to_device,
                        check_checkpoints, check_data_paths, train_splits)

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


def _tool(name: str):
    """tools/<name>.py as a module (its main() runs in this process)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        f'mmkd_{name}_tool', osp.join(ROOT, 'tools', f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _kd_ds_argv(demo_root, work, *opts) -> list:
    """tools/train.py's command line for the demo KD + DS config."""
    config = osp.join(
        ROOT, 'configs/demo/retinanet_r18-w32-to-w16_kd-ds_demo-coco.py')
    demo = [o.replace('model.test_cfg', 'model.student.test_cfg')
            for o in det_options(demo_root)]
    return ['train.py', config, '--work-dir', str(work), '--cfg-options',
            *demo, *opts]


CKPT_KEYS = ('model.teacher_ckpt', 'model.student_ckpt', 'load_from')


def test_missing_checkpoint_stops_before_the_work_dir(demo_root, tmp_path,
                                                      monkeypatch):
    """tools/train.py: a missing teacher_ckpt / student_ckpt / load_from
    names the config key and the path, and nothing is written."""
    train = _tool('train')
    teacher = tmp_path / 'teacher.pth'  # present (only checked here)
    torch.save({}, teacher)
    monkeypatch.setenv('LOCAL_RANK', '0')
    for key in CKPT_KEYS:
        work = tmp_path / key
        missing = str(tmp_path / f'{key}.pth')
        present = [] if key == 'model.teacher_ckpt' else [
            f'model.teacher_ckpt={teacher}']
        monkeypatch.setattr(sys, 'argv', _kd_ds_argv(
            demo_root, work, *present, f'{key}={missing}'))
        with pytest.raises(SystemExit) as err:
            train.main()
        assert f'{key}: file "{missing}" does not exist' in str(err.value)
        assert not work.exists()


def _damaged(tmp_path, kind: str) -> str:
    """5,000 random bytes named trunc.pth, or a real checkpoint cut in
    half."""
    if kind == 'random':
        path = tmp_path / 'trunc.pth'
        data = bytearray(torch.randint(
            0, 256, (5000, ), generator=torch.Generator().manual_seed(1)
        ).tolist())
        data[0] = 0xd8  # neither a zip ("PK") nor a pickle (0x80) header
        path.write_bytes(bytes(data))
    else:
        path = tmp_path / 'cut.pth'
        torch.save(dict(state_dict=dict(w=torch.randn(5000))), path)
        path.write_bytes(path.read_bytes()[:path.stat().st_size // 2])
    return str(path)


@pytest.mark.parametrize('kind', ['random', 'cut'])
def test_damaged_checkpoint_stops_before_the_work_dir(demo_root, tmp_path,
                                                      monkeypatch, kind):
    """tools/train.py: a corrupt or truncated teacher_ckpt / student_ckpt /
    load_from is named with its key before the work dir exists, with no
    advice to trust it."""
    train = _tool('train')
    damaged = _damaged(tmp_path, kind)
    teacher = tmp_path / 'teacher.pth'
    torch.save({}, teacher)
    monkeypatch.setenv('LOCAL_RANK', '0')
    for key in CKPT_KEYS:
        work = tmp_path / key
        present = [] if key == 'model.teacher_ckpt' else [
            f'model.teacher_ckpt={teacher}']
        monkeypatch.setattr(sys, 'argv', _kd_ds_argv(
            demo_root, work, *present, f'{key}={damaged}'))
        with pytest.raises(SystemExit) as err:
            train.main()
        msg = str(err.value)
        assert msg.startswith(f'error: {key}: checkpoint "{damaged}" is '
                              'corrupt or truncated: '), msg
        assert 'weights_only' not in msg and 'MMKD_TRUST' not in msg
        assert not work.exists()


def test_check_checkpoints_names_the_key(tmp_path):
    damaged = _damaged(tmp_path, 'cut')
    good = tmp_path / 'good.pth'
    torch.save(dict(state_dict={}), good)
    cfg = Config(dict(model=dict(teacher_ckpt=str(good)), load_from=damaged))
    with pytest.raises(CorruptCheckpointError,
                       match=f'^load_from: checkpoint "{damaged}" is corrupt '
                       'or truncated: not a readable zip archive'):
        check_checkpoints(cfg)
    cfg.load_from = str(good)
    check_checkpoints(cfg)  # whole files pass


def test_train_pre_check_reads_only_train_and_val(demo_root, tmp_path,
                                                  monkeypatch):
    """Missing test-split files do not stop training (tools/test.py checks
    them); val's are checked only when the config validates."""
    missing = str(tmp_path / 'absent') + '/'
    opts = det_options(demo_root) + [
        f'test_dataloader.dataset.data_root={missing}',
        f'test_evaluator.ann_file={missing}test.json']
    monkeypatch.setenv('LOCAL_RANK', '0')
    monkeypatch.setattr(sys, 'argv', ['train.py', DET_CONFIG, '--work-dir',
                                      str(tmp_path / 'w'), '--cfg-options',
                                      *opts])
    train = _tool('train')
    cfg = train.build_cfg(train.get_args())  # passes the pre-check
    assert train_splits(cfg) == ('train', 'val')
    with pytest.raises(FileNotFoundError,
                       match='test_dataloader.dataset.data_root'):
        check_data_paths(cfg, ('test', ))  # what tools/test.py asks for

    cfg.val_dataloader.dataset.data_root = missing
    with pytest.raises(FileNotFoundError,
                       match='val_dataloader.dataset.data_root'):
        check_data_paths(cfg, train_splits(cfg))
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    assert train_splits(cfg) == ('train', )
    check_data_paths(cfg, train_splits(cfg))
    assert not (tmp_path / 'w').exists()
