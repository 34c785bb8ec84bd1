"""The ADE20K distillation configs of ``configs/distill/seg``.

Every file is parsed and checked against the pair it claims (student = its
base config's model, teacher and its model-zoo checkpoint, the loss, CWD =
KD + loss, KD+DS = KD + stages only, dataset and schedule). One config per
pair is built on the CPU, the KD+DS one (it holds every setting of its KD
config plus the deep-supervision heads), and runs one training loss step on
two 64x64 images. The models keep mmseg's SyncBN: torch's SyncBatchNorm
falls back to plain batch norm without a process group (one process), so
the step also guards the single-process use the README describes.
"""
import ast
import functools
import glob
import importlib.util
import os.path as osp

import pytest
import torch
import yaml
from mmengine.config import Config

from helpers import ROOT

CFG_DIR = osp.join(ROOT, 'configs', 'distill', 'seg')
CONFIGS = sorted(osp.basename(f) for f in glob.glob(osp.join(CFG_DIR, '*.py')))

# plain student configs kept here (mmseg has no such config)
STUDENT_CONFIGS = {'pspnet_r18-d8_4xb4-80k_ade20k-512x512.py'}
SCHEDULE_80K = 'mmseg::_base_/schedules/schedule_80k.py'

# the KD config of each pair; its CWD and KD+DS configs are the same name
# with 'cwd_' / 'kd-ds_' for 'kd_'
PAIRS = {
    'kd_pspnet_r101-d8-to-r18-d8_4xb4-80k_ade20k-512x512.py': dict(
        base='./pspnet_r18-d8_4xb4-80k_ade20k-512x512.py',
        teacher='mmseg::pspnet/pspnet_r101-d8_4xb4-160k_ade20k-512x512.py',
        ckpt='pspnet_r101-d8_512x512_160k_ade20k_20200615_100650-967c316f'
        '.pth',
        iters=80000,
        schedule=None,  # the student config's
        student_backbone=('ResNetV1c', 18),
        teacher_backbone=('ResNetV1c', 101),
        ds_channels=[128, 256],
        aux_head=True),
    'kd_deeplabv3plus_r101-d8-to-mobilenet-v2-d8_4xb4-80k_ade20k-512x512.py':
    dict(
        base='mmseg::mobilenet_v2/'
        'mobilenet-v2-d8_deeplabv3plus_4xb4-160k_ade20k-512x512.py',
        teacher='mmseg::deeplabv3plus/'
        'deeplabv3plus_r101-d8_4xb4-80k_ade20k-512x512.py',
        ckpt='deeplabv3plus_r101-d8_512x512_80k_ade20k_20200615_014139-'
        'd5730af7.pth',
        iters=80000,
        schedule=SCHEDULE_80K,  # the student config's is 160k
        student_backbone=('MobileNetV2', None),
        teacher_backbone=('ResNetV1c', 101),
        ds_channels=[32, 96],
        aux_head=True),
    'kd_segformer_mit-b2-to-mit-b0_8xb2-160k_ade20k-512x512.py': dict(
        base='mmseg::segformer/segformer_mit-b0_8xb2-160k_ade20k-512x512.py',
        teacher='mmseg::segformer/'
        'segformer_mit-b2_8xb2-160k_ade20k-512x512.py',
        ckpt='segformer_mit-b2_512x512_160k_ade20k_20210726_112103-cbd414ac'
        '.pth',
        iters=160000,
        schedule=None,
        student_backbone=('MixVisionTransformer', None),
        teacher_backbone=('MixVisionTransformer', None),
        ds_channels=[64, 160],
        aux_head=False),
    'kd_upernet_swin-b-to-r50_4xb4-160k_ade20k-512x512.py': dict(
        base='mmseg::upernet/upernet_r50_4xb4-160k_ade20k-512x512.py',
        teacher='mmseg::swin/swin-base-patch4-window12-in22k-384x384-pre_'
        'upernet_8xb2-160k_ade20k-512x512.py',
        ckpt='upernet_swin_base_patch4_window12_512x512_160k_ade20k_'
        'pretrain_384x384_22K_20210531_125459-429057bf.pth',
        iters=160000,
        schedule=None,
        student_backbone=('ResNetV1c', 50),
        teacher_backbone=('SwinTransformer', None),
        ds_channels=[512, 1024],
        aux_head=True),
    # a CascadeEncoderDecoder: FCN head (decode_0) -> OCR head (decode_1)
    'kd_ocrnet_hr48-to-hr18_4xb4-160k_ade20k-512x512.py': dict(
        base='mmseg::ocrnet/ocrnet_hr18_4xb4-160k_ade20k-512x512.py',
        teacher='mmseg::ocrnet/ocrnet_hr48_4xb4-160k_ade20k-512x512.py',
        ckpt='ocrnet_hr48_512x512_160k_ade20k_20200615_184705-a073726d.pth',
        iters=160000,
        schedule=None,
        student_backbone=('HRNet', None),
        teacher_backbone=('HRNet', None),
        ds_channels=[36, 72],
        aux_head=False,
        cascade=True),
    # query-based: KD on the semantic class map; the deep-supervision levels
    # are the decoder's 9 intermediate predictions (no heads added)
    'kd_mask2former_swin-b-to-r50_8xb2-160k_ade20k-512x512.py': dict(
        base='mmseg::mask2former/mask2former_r50_8xb2-160k_ade20k-512x512.py',
        teacher='mmseg::mask2former/mask2former_swin-b-in22k-384x384-pre_'
        '8xb2-160k_ade20k-640x640.py',
        ckpt='mask2former_swin-b-in22k-384x384-pre_8xb2-160k_ade20k-640x640_'
        '20221203_235230-7ec0f569.pth',
        iters=160000,
        schedule=None,
        student_backbone=('ResNet', 50),
        teacher_backbone=('SwinTransformer', None),
        ds_stages=list(range(9)),
        aux_head=False,
        query=True),
}
# the CWD authors' ADE20K setting for PSPNet R101 -> R18 (their release's
# cwd_w_10_t_1_..._512x512_4x4_80k_ade20k.py: tau 1, loss weight 10)
CWD_SOURCE = dict(temperature=1.0, loss_weight=10.0)
DS_STAGES = [1, 2]
NUM_CLASSES = 150


def _kd_name(name: str) -> str:
    for prefix in ('kd-ds_', 'cwd_'):
        if name.startswith(prefix):
            return 'kd_' + name[len(prefix):]
    return name


def _variant(name: str) -> str:
    return name.split('_', 1)[0]


@functools.lru_cache(maxsize=None)
def _load(name: str) -> Config:
    return Config.fromfile(osp.join(CFG_DIR, name))


@functools.lru_cache(maxsize=None)
def _base_cfg(path: str) -> Config:
    """A ``mmseg::`` or ``./`` (this folder) config."""
    if path.startswith('./'):
        return Config.fromfile(osp.join(CFG_DIR, path[2:]))
    return Config.fromfile(_mmseg_file(path))


def _strip_scope(obj):
    """Drop the ``_scope_`` keys mmengine adds to dicts from ``mmseg::``."""
    if isinstance(obj, dict):
        return {k: _strip_scope(v) for k, v in obj.items() if k != '_scope_'}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_strip_scope(v) for v in obj)
    return obj


def _flat(obj, prefix=''):
    """``{'a.b.c': leaf}`` of a nested dict."""
    if not isinstance(obj, dict):
        return {prefix: obj}
    out = {}
    for k, v in obj.items():
        out.update(_flat(v, f'{prefix}.{k}' if prefix else k))
    return out


def _diff(a: dict, b: dict) -> dict:
    fa, fb = _flat(_strip_scope(a)), _flat(_strip_scope(b))
    return {k: (fa.get(k), fb.get(k))
            for k in set(fa) | set(fb) if fa.get(k) != fb.get(k)}


def _base_of(name: str) -> str:
    """The ``_base_`` string of a config file."""
    tree = ast.parse(open(osp.join(CFG_DIR, name)).read())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == '_base_'
                for t in node.targets):
            return ast.literal_eval(node.value)
    raise AssertionError(f'{name} has no _base_')


def _header(name: str) -> str:
    lines = open(osp.join(CFG_DIR, name)).read().splitlines()
    head = []
    for line in lines:
        if not line.startswith('#'):
            break
        head.append(line)
    return '\n'.join(head)


def _mmseg_file(path: str) -> str:
    spec = importlib.util.find_spec('mmseg')
    return osp.join(
        osp.dirname(spec.origin), '.mim', 'configs', path.split('::', 1)[1])


def test_every_pair_has_kd_cwd_and_kd_ds_configs():
    expected = set(STUDENT_CONFIGS)
    for kd in PAIRS:
        expected |= {kd, 'cwd_' + kd[3:], 'kd-ds_' + kd[3:]}
    assert set(CONFIGS) == expected, (
        'configs/distill/seg and PAIRS disagree: add new configs to PAIRS')


def test_pspnet_r18_student_is_derived_as_mmseg_does_for_cityscapes():
    """R50 ADE20K -> R18 changes exactly what mmseg's Cityscapes R18 does."""
    name = 'pspnet_r18-d8_4xb4-80k_ade20k-512x512.py'
    ade_r50 = 'mmseg::pspnet/pspnet_r50-d8_4xb4-80k_ade20k-512x512.py'
    assert _base_of(name) == ade_r50
    ours, r50 = _load(name), _base_cfg(ade_r50)
    city_r18 = _base_cfg(
        'mmseg::pspnet/pspnet_r18-d8_4xb2-80k_cityscapes-512x1024.py')
    city_r50 = _base_cfg(
        'mmseg::pspnet/pspnet_r50-d8_4xb2-80k_cityscapes-512x1024.py')
    changes = _diff(r50.model, ours.model)
    assert changes == _diff(city_r50.model, city_r18.model)
    assert changes['backbone.depth'] == (50, 18)
    # everything but the model is the R50 ADE20K config's (plus the
    # auto_scale_lr mmseg's config lacks: its 4 x 4 images)
    assert 'auto_scale_lr' not in r50
    assert ours.auto_scale_lr == dict(
        enable=False, base_batch_size=4 * r50.train_dataloader.batch_size)
    for key in set(ours) | set(r50):
        if key not in ('model', 'auto_scale_lr'):
            assert _strip_scope(ours.get(key)) == \
                _strip_scope(r50.get(key)), key


@pytest.mark.parametrize('name', sorted(set(CONFIGS) - STUDENT_CONFIGS))
def test_config(name):
    cfg = _load(name)
    pair = PAIRS[_kd_name(name)]
    model = cfg.model
    assert model.type == 'mmkd.SegmentationDistiller'
    assert cfg.default_scope == 'mmseg'
    assert 'mmkd' in cfg.custom_imports['imports']
    assert not cfg.custom_imports.get('allow_failed_imports', False)
    # the KD config inherits the student's config directly ...
    base = _base_cfg(pair['base'])
    assert _base_of(_kd_name(name)) == pair['base']
    assert _strip_scope(model.student.to_dict()) == \
        _strip_scope(base.model.to_dict())
    assert _final_head(model.student).num_classes == NUM_CLASSES
    # ... keeps its data and optimiser, 512x512 crops ...
    for key in ('train_dataloader', 'val_dataloader', 'val_evaluator',
                'optim_wrapper'):
        assert _strip_scope(cfg[key]) == _strip_scope(base[key]), key
    assert tuple(cfg.crop_size) == (512, 512)
    assert tuple(model.student.data_preprocessor.size) == (512, 512)
    # ... and its schedule, or mmseg's 80k one where it says so
    sched = _base_cfg(pair['schedule']) if pair['schedule'] else base
    for key in ('train_cfg', 'param_scheduler', 'default_hooks'):
        assert _strip_scope(cfg[key]) == _strip_scope(sched[key]), key
    assert cfg.train_cfg.max_iters == pair['iters']
    assert cfg.param_scheduler[-1]['end'] == pair['iters']
    # teacher: an mmseg config and a checkpoint of mmseg's model zoo for it
    assert model.teacher == pair['teacher']
    assert osp.isfile(_mmseg_file(pair['teacher'])), pair['teacher']
    # its weights: a model-zoo URL of mmseg's own metafile, by file name
    metafile = osp.join(
        osp.dirname(_mmseg_file(pair['teacher'])), 'metafile.yaml')
    with open(metafile) as f:
        urls = {m['Weights'] for m in yaml.safe_load(f)['Models']}
    assert cfg.teacher_ckpt == model.teacher_ckpt
    assert cfg.teacher_ckpt in urls
    assert cfg.teacher_ckpt.endswith('/' + pair['ckpt'])
    assert pair['ckpt'] in _header(name), 'header must name the checkpoint'
    hooks = [h['type'] for h in cfg.custom_hooks]
    assert {'mmkd.StudentCheckpointHook', 'mmkd.RunInfoHook'} <= set(hooks)
    assert 'find_unused_parameters' not in cfg
    # the loss, and what each variant adds to the KD config
    variant = _variant(name)
    logits = model.distill.logits
    if variant == 'cwd':
        assert logits.type == 'mmkd.ChannelWiseDivergence'
        assert {k: logits[k] for k in CWD_SOURCE} == CWD_SOURCE
    else:
        assert logits.type == 'mmkd.PixelKDLoss'
    kd = _load(_kd_name(name))
    extra = dict(
        kd=set(),
        cwd={'distill', 'distill_aux_head'},
        **{'kd-ds': {'deep_supervision'}})[variant]
    assert {k: v for k, v in model.items() if k not in extra} == \
        {k: v for k, v in kd.model.items() if k not in extra}
    if variant == 'kd':
        assert set(model) == {'type', 'student', 'teacher', 'teacher_ckpt',
                              'distill'}
    else:
        assert _base_of(name) == './' + _kd_name(name)
        assert cfg.custom_hooks == kd.custom_hooks
    if variant == 'cwd':
        # the CWD recipe distils the decode head's logits only
        assert model.distill_aux_head is False
    if variant == 'kd-ds':
        assert model.deep_supervision.stages == pair.get('ds_stages',
                                                         DS_STAGES)
    else:
        assert model.get('deep_supervision') is None


def _final_head(model):
    heads = model.decode_head
    return heads[-1] if isinstance(heads, (list, torch.nn.ModuleList)) \
        else heads


def _batch(n=2, size=64, seed=0):
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    g = torch.Generator().manual_seed(seed)
    inputs = torch.randn(n, 3, size, size, generator=g)
    samples = []
    for _ in range(n):
        sample = SegDataSample(
            metainfo=dict(img_shape=(size, size), pad_shape=(size, size)))
        seg = torch.randint(0, NUM_CLASSES, (1, size, size), generator=g)
        seg[:, :8] = 255  # ignored rows
        sample.gt_sem_seg = PixelData(data=seg)
        samples.append(sample)
    return inputs, samples


@pytest.mark.parametrize('name', ['kd-ds_' + kd[3:] for kd in PAIRS])
def test_build_and_one_loss_step(name):
    """Build the distiller as the runner would (without teacher weights)."""
    from mmengine.registry import MODELS, DefaultScope
    from mmengine.utils import import_modules_from_strings

    cfg = _load(name)
    pair = PAIRS[_kd_name(name)]
    import_modules_from_strings(**cfg.custom_imports)
    model_cfg = cfg.model.copy()
    model_cfg.teacher_ckpt = None
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        model = MODELS.build(model_cfg)

    from mmkd.losses import PixelKDLoss
    from mmkd.models import SegmentationDistiller
    assert isinstance(model, SegmentationDistiller)
    for net, (kind, depth) in ((model.student, pair['student_backbone']),
                               (model.teacher, pair['teacher_backbone'])):
        assert type(net.backbone).__name__ == kind
        if depth is not None:
            assert net.backbone.depth == depth
        assert _final_head(net).num_classes == NUM_CLASSES
    assert model.student.with_auxiliary_head is pair['aux_head']
    assert not any(k.startswith('teacher') for k in model.state_dict())
    assert all(not p.requires_grad for p in model.teacher.parameters())
    # the same normalisation on both sides
    assert model.teacher_runner._renorm is None
    assert isinstance(model.kd_loss, PixelKDLoss)
    stages = pair.get('ds_stages', DS_STAGES)
    assert model.ds.stages == stages
    if pair.get('query'):  # the decoder's predictions: no heads
        assert len(model.ds_heads) == 0
    else:
        assert len(model.ds_heads) == len(stages)
    for stage, channels, head in zip(stages, pair.get('ds_channels', []),
                                     model.ds_heads):
        assert (head.in_index, head.in_channels) == (stage, channels)
        assert head.num_classes == NUM_CLASSES

    model.train()
    losses = model.loss(*_batch())
    # the heads' own settings (light / full) are the config's business:
    # each stage has at least its KD term
    expected = {'decode.loss_kd'} | {
        f'ds{i}.loss_kd' for i in range(len(stages))}
    if pair.get('cascade'):  # the student's own keys, and its first head's KD
        expected |= {'decode_0.loss_ce', 'decode_1.loss_ce',
                     'decode_0.loss_kd'}
    elif pair.get('query'):  # mmdet's losses, at every decoder layer
        expected |= {f'decode.{d}loss_{k}' for k in ('cls', 'mask', 'dice')
                     for d in [''] + [f'd{i}.' for i in stages]}
    else:
        expected |= {'decode.loss_ce'}
    if pair['aux_head']:
        expected |= {'aux.loss_ce', 'aux.loss_kd'}
    assert expected <= set(losses)
    assert all(v > 0 for k, v in losses.items() if 'loss_kd' in k)
    total = sum(v for k, v in losses.items() if 'loss' in k)
    assert torch.isfinite(total)
    total.backward()
    for head in model.ds_heads:
        assert all(p.grad is not None for p in head.parameters())
    if pair.get('query'):
        layers = model.student.decode_head.transformer_decoder.layers
        assert all(p.grad is not None for p in layers.parameters())
    assert all(p.grad is None for p in model.teacher.parameters())


def _train_tool():
    """tools/train.py as a module (its build_cfg, without running it)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        'mmkd_tools_train', osp.join(ROOT, 'tools', 'train.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize('name', sorted(PAIRS))
def test_auto_scale_lr_flag_builds(name, demo_root, tmp_path):
    """``tools/train.py CONFIG --auto-scale-lr`` on the ADE20K configs (their
    cwd / kd-ds variants inherit the setting): the config resolves with
    scaling on and the base batch of the schedule in the config's name
    (GPUs x images per GPU), as mmseg's own configs that set one."""
    import argparse
    import re

    ade = osp.join(demo_root, 'ade') + '/'
    options = {
        f'{split}_dataloader.dataset.data_root': ade
        for split in ('train', 'val', 'test')
    }
    options['model.teacher_ckpt'] = None  # tests download nothing
    args = argparse.Namespace(
        config=osp.join(CFG_DIR, name), work_dir=str(tmp_path / 'work'),
        amp=False, auto_scale_lr=True, resume=None, launcher='none',
        cfg_options=options)
    cfg = _train_tool().build_cfg(args)
    assert cfg.auto_scale_lr.enable is True
    gpus, per_gpu = map(int, re.search(r'_(\d+)xb(\d+)-', name).groups())
    assert per_gpu == cfg.train_dataloader.batch_size
    assert cfg.auto_scale_lr.base_batch_size == gpus * per_gpu
    assert not osp.exists(tmp_path / 'work')  # build only, nothing written
