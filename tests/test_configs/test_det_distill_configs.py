"""The COCO distillation configs of ``configs/distill/det``.

Every file is parsed and checked against the pair it claims (student = its
mmdet base config's model, teacher, distillation terms, KD+DS = KD + stages
only). Building an R101 + R50 distiller on the CPU takes seconds, so one
config per detector family is built: the KD+DS one, which holds every
setting of its KD config plus the deep-supervision branches.
"""
import ast
import functools
import glob
import importlib.util
import os.path as osp

import pytest
from mmengine.config import Config

from helpers import ROOT

CFG_DIR = osp.join(ROOT, 'configs', 'distill', 'det')
CONFIGS = sorted(osp.basename(f) for f in glob.glob(osp.join(CFG_DIR, '*.py')))

# the KD config of each pair -> (student base, teacher, distillation terms,
# two-stage); its KD+DS config is the same name with 'kd-ds_' for 'kd_'
PAIRS = {
    'kd_retinanet_r101-to-r50_fpn_2x_coco.py': (
        'mmdet::retinanet/retinanet_r50_fpn_2x_coco.py',
        'mmdet::retinanet/retinanet_r101_fpn_2x_coco.py',
        dict(cls=('mmkd.SigmoidKDLoss', 1.0, 1.0)), False),
    'kd_gfl_r101-to-r50_fpn_1x_coco.py': (
        'mmdet::gfl/gfl_r50_fpn_1x_coco.py',
        'mmdet::gfl/gfl_r101_fpn_ms-2x_coco.py',
        dict(cls=('mmkd.SigmoidKDLoss', 1.0, 1.0),
             box=('mmkd.KDLoss', 10.0, 0.25)), False),
    'kd_fcos_r101-to-r50-caffe_fpn_gn-head_1x_coco.py': (
        'mmdet::fcos/fcos_r50-caffe_fpn_gn-head_1x_coco.py',
        'mmdet::fcos/fcos_r101-caffe_fpn_gn-head-1x_coco.py',
        dict(cls=('mmkd.SigmoidKDLoss', 1.0, 1.0)), False),
    'kd_faster-rcnn_r101-to-r50_fpn_2x_coco.py': (
        'mmdet::faster_rcnn/faster-rcnn_r50_fpn_2x_coco.py',
        'mmdet::faster_rcnn/faster-rcnn_r101_fpn_2x_coco.py',
        dict(cls=('mmkd.KDLoss', 1.0, 1.0)), True),
    'kd_mask-rcnn_r101-to-r50_fpn_2x_coco.py': (
        'mmdet::mask_rcnn/mask-rcnn_r50_fpn_2x_coco.py',
        'mmdet::mask_rcnn/mask-rcnn_r101_fpn_2x_coco.py',
        dict(cls=('mmkd.KDLoss', 1.0, 1.0)), True),
}
DS_STAGES = [1, 2]
# ResNet outputs 0..3 (C2..C5): channels of the stages DS branches read
RESNET_CHANNELS = [256, 512, 1024, 2048]


def _kd_name(name: str) -> str:
    return name.replace('kd-ds_', 'kd_', 1)


def _is_ds(name: str) -> bool:
    return name.startswith('kd-ds_')


@functools.lru_cache(maxsize=None)
def _load(name: str) -> Config:
    return Config.fromfile(osp.join(CFG_DIR, name))


@functools.lru_cache(maxsize=None)
def _mmdet_model(path: str) -> dict:
    from mmengine.hub import get_config
    return _strip_scope(get_config(path).model.to_dict())


def _strip_scope(obj):
    """Drop the ``_scope_`` keys mmengine adds to dicts from ``mmdet::``."""
    if isinstance(obj, dict):
        return {k: _strip_scope(v) for k, v in obj.items() if k != '_scope_'}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_strip_scope(v) for v in obj)
    return obj


def _base_of(name: str) -> str:
    """The ``_base_`` string of a config file."""
    tree = ast.parse(open(osp.join(CFG_DIR, name)).read())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == '_base_'
                for t in node.targets):
            return ast.literal_eval(node.value)
    raise AssertionError(f'{name} has no _base_')


def _mmdet_file(path: str) -> str:
    spec = importlib.util.find_spec('mmdet')
    return osp.join(
        osp.dirname(spec.origin), '.mim', 'configs', path.split('::', 1)[1])


def test_every_pair_has_kd_and_kd_ds_configs():
    expected = set(PAIRS) | {n.replace('kd_', 'kd-ds_', 1) for n in PAIRS}
    assert set(CONFIGS) == expected, (
        'configs/distill/det and PAIRS disagree: add new configs to PAIRS')


@pytest.mark.parametrize('name', CONFIGS)
def test_config(name):
    cfg = _load(name)
    student_base, teacher, distill, _ = PAIRS[_kd_name(name)]
    model = cfg.model
    assert model.type == 'mmkd.DetectionDistiller'
    assert cfg.default_scope == 'mmdet'
    assert 'mmkd' in cfg.custom_imports['imports']
    assert not cfg.custom_imports.get('allow_failed_imports', False)
    assert dict(type='mmkd.StudentCheckpointHook') in [
        dict(h) for h in cfg.custom_hooks]
    # the KD config inherits the student's mmdet config directly ...
    assert _base_of(_kd_name(name)) == student_base
    assert _strip_scope(model.student.to_dict()) == \
        _mmdet_model(student_base)
    # ... and its dataset, schedule and runtime stay the student's
    base = Config.fromfile(_mmdet_file(student_base))
    for key in ('train_dataloader', 'val_evaluator', 'train_cfg',
                'param_scheduler', 'optim_wrapper'):
        assert _strip_scope(cfg[key]) == _strip_scope(base[key]), key
    assert model.teacher == teacher
    assert osp.isfile(_mmdet_file(teacher)), teacher
    assert cfg.teacher_ckpt == model.teacher_ckpt
    assert model.teacher_ckpt.startswith('checkpoints/')
    assert model.teacher_ckpt.endswith('.pth')
    assert set(model.distill) == set(distill)
    for term, (loss, t, w) in distill.items():
        assert model.distill[term] == dict(
            type=loss, temperature=t, loss_weight=w), term
    assert 'SyncBN' not in cfg.pretty_text
    assert 'find_unused_parameters' not in cfg
    if _is_ds(name):
        # KD+DS = the KD config + deep_supervision, nothing else
        assert _base_of(name) == './' + _kd_name(name)
        assert model.deep_supervision == dict(stages=DS_STAGES)
        kd = _load(_kd_name(name))
        assert {k: v for k, v in model.items()
                if k != 'deep_supervision'} == kd.model.to_dict()
        assert cfg.custom_hooks == kd.custom_hooks
    else:
        assert model.get('deep_supervision') is None


@pytest.mark.parametrize('name', [n for n in CONFIGS if _is_ds(n)])
def test_build(name):
    """Build the distiller as the runner would (without teacher weights)."""
    from mmengine.registry import MODELS, DefaultScope
    from mmengine.utils import import_modules_from_strings

    cfg = _load(name)
    _, _, distill, two_stage = PAIRS[_kd_name(name)]
    import_modules_from_strings(**cfg.custom_imports)
    model_cfg = cfg.model.copy()
    model_cfg.teacher_ckpt = None
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        model = MODELS.build(model_cfg)

    from mmkd.models import DetectionDistiller
    assert isinstance(model, DetectionDistiller)
    assert model.two_stage is two_stage
    assert model.student.backbone.depth == 50
    assert model.teacher.backbone.depth == 101
    assert not any(k.startswith('teacher') for k in model.state_dict())
    # the same normalisation on both sides: no re-normalisation
    assert model._renorm is None
    assert set(model.kd_losses) == set(distill)
    for term, (loss, t, w) in distill.items():
        built = model.kd_losses[term]
        assert type(built).__name__ == loss.split('.', 1)[1]
        assert (built.temperature, built.loss_weight) == (t, w), term
        assert model.kd_levels[term] is None  # all levels
    assert model.ds_stages == DS_STAGES
    assert len(model.ds_branches) == len(DS_STAGES)
    for stage, branch in zip(DS_STAGES, model.ds_branches):
        assert branch['neck'].lateral.conv.in_channels == \
            RESNET_CHANNELS[stage]
        head = type(branch['head']).__name__
        if two_stage:
            assert head == type(model.student.roi_head.bbox_head).__name__
            assert not branch['head'].with_reg
            assert 'roi_extractor' in branch
        else:
            assert head == type(model.student.bbox_head).__name__
        assert all(p.requires_grad for p in branch.parameters())
    assert all(not p.requires_grad for p in model.teacher.parameters())
